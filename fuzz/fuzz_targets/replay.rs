//! `gradless replay` inputs: parsed, then every case run.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = gradless_envs::replay::run(text);
    }
});
