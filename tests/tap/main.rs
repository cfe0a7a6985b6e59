//! TAP tests (to come).
