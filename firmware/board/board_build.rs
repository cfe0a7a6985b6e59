//! The build script of every board crate (each names this file as its
//! `build` in Cargo.toml): puts the board's `memory.x` (and its
//! `device.x`, if it has one) where the linker finds it and links with the
//! runtime crate's `link.x` (cortex-m-rt or riscv-rt, which both read
//! `memory.x`). Cargo runs it in the board's own folder, so `memory.x` is
//! the board's.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    // A board with its own device vectors (cortex-m-rt's `device` feature)
    // has the `device.x` that cortex-m-rt's link.x includes.
    if fs::exists("device.x").expect("look for device.x") {
        fs::copy("device.x", out.join("device.x")).expect("copy device.x to OUT_DIR");
    }
    println!("cargo:rerun-if-changed=device.x");
    // Keep sections at their own alignment instead of page-aligning them,
    // so that small flash and RAM regions are not padded.
    println!("cargo:rustc-link-arg=--nmagic");
    println!("cargo:rustc-link-arg=-Tlink.x");
}
