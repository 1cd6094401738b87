//! `gradless devices`: which burn devices work here, and what wgpu runs on.

use anyhow::Result;
use gradless_device::{Backend, DeviceChoice, describe};
use serde_json::json;

use crate::output::print_json_line;

/// Prints one line per backend: the adapter it opened, or why it could not; then what
/// `--device auto` takes.
pub fn run(json: bool) -> Result<()> {
    for backend in Backend::ALL {
        let report = describe(backend);
        if json {
            let line = match &report {
                Ok(report) => {
                    json!({ "device": backend, "available": true, "adapter": report.adapter,
                    "target": report.target, "hardware": report.hardware })
                }
                Err(error) => {
                    json!({ "device": backend, "available": false, "error": error.to_string() })
                }
            };
            print_json_line(&line)?;
        } else {
            match report {
                Ok(report) => println!("{report}"),
                Err(error) => println!("{backend}: unavailable: {error}"),
            }
        }
    }
    let auto = DeviceChoice::Auto.resolve();
    if json {
        print_json_line(
            &json!({ "device": "auto", "chooses": auto.backend, "reason": auto.reason }),
        )?;
    } else {
        println!("auto: {} ({})", auto.backend, auto.reason);
    }
    Ok(())
}
