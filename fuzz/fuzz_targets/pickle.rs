//! PyTorch files (`torch.save` zips, legacy pickles) read without running pickle code.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| common::read_foreign("policy.pt", bytes));
