//! Checkpoint directories: `metadata.json` and `model.bpk`, opened and loaded as the
//! evaluator loads them. The input is a metadata file, a zero byte, then the weights.
//! Metadata that parses is also sealed again (its `metadata_sha256` recomputed), so the
//! checks behind the checksum are reached too.
#![no_main]

#[path = "common.rs"]
mod common;

use gradless_policy::{Agent, AgentDevice, Checkpoint, METADATA_FILE, MODEL_FILE, Metadata};

fn open_and_load(dir: &std::path::Path) {
    let Ok(checkpoint) = Checkpoint::open(dir) else {
        return;
    };
    let inference = gradless_device::InferenceDevice::new(&burn::prelude::Device::flex());
    let _ = Agent::load(&checkpoint, &AgentDevice::new(&inference));
}

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let split = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let (metadata, weights) = bytes.split_at(split);
    let weights = weights.get(1..).unwrap_or_default();
    let dir = common::scratch_file("checkpoint");
    std::fs::create_dir_all(&dir).expect("the scratch folder is writable");
    std::fs::write(dir.join(MODEL_FILE), weights).expect("writable");
    std::fs::write(dir.join(METADATA_FILE), metadata).expect("writable");
    open_and_load(&dir);
    if let Ok(mut parsed) = serde_json::from_slice::<Metadata>(metadata) {
        parsed.metadata_sha256 = parsed.content_sha256();
        if let Some(hash) = parsed.files.get_mut(MODEL_FILE) {
            *hash = gradless_policy::sha256_file(&dir.join(MODEL_FILE)).expect("readable");
        }
        parsed.metadata_sha256 = parsed.content_sha256();
        let sealed = serde_json::to_vec(&parsed).expect("metadata serialises");
        std::fs::write(dir.join(METADATA_FILE), sealed).expect("writable");
        open_and_load(&dir);
    }
});
