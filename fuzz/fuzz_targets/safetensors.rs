//! `gradless export`'s safetensors files: the header, the offsets and the data.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| common::read_foreign("policy.safetensors", bytes));
