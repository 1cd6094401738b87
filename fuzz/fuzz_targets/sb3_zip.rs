//! Stable-Baselines3 zips: the archive, its `data` JSON and its `policy.pth` entry.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| common::read_foreign("policy.zip", bytes));
