//! The build script of every board crate (each names this file as its
//! `build` in Cargo.toml): puts the board's `memory.x` where the linker
//! finds it and links with the runtime crate's `link.x` (cortex-m-rt or
//! riscv-rt, which both read `memory.x`). Cargo runs it in the board's own
//! folder, so `memory.x` is the board's.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    // Keep sections at their own alignment instead of page-aligning them,
    // so that small flash and RAM regions are not padded.
    println!("cargo:rustc-link-arg=--nmagic");
    println!("cargo:rustc-link-arg=-Tlink.x");
}
