//! What a Wi-Fi station asks of the network it joins, from the credentials
//! the image was built with.

/// The security a station requires of the access point: the weakest it
/// accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No password: an open network (and any stronger one, which then
    /// refuses the station).
    Open,
    /// A passphrase: WPA2-Personal or stronger (WPA2/WPA3, WPA3).
    Personal,
}

impl Security {
    /// The security for a station with `password` (`None` or empty: none).
    pub fn for_password(password: Option<&str>) -> Self {
        match password {
            Some(password) if !password.is_empty() => Security::Personal,
            _ => Security::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_password_is_an_open_network() {
        assert_eq!(Security::for_password(None), Security::Open);
        assert_eq!(Security::for_password(Some("")), Security::Open);
    }

    #[test]
    fn a_password_is_wpa2_personal_or_stronger() {
        assert_eq!(Security::for_password(Some("secret")), Security::Personal);
    }
}
