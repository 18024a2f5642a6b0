//! spawn-stamp: the child command of bench W6 (time to first command). The first thing it does
//! is read the wall clock (CLOCK_REALTIME); it then writes that time, as seconds since the epoch
//! with nanoseconds, to DIR/<COVE_ACCOUNT_ID>_<COVE_REGION>, and exits 0.
//!
//! So the stamp is taken one exec after the tool spawned it: no shell, no second process (as
//! `sh -c 'date +%s.%N > ...'` would need), only the dynamic loader and Rust's start-up
//! before `main`, well under a millisecond on an idle machine.
//!
//! usage: spawn-stamp DIR

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: spawn-stamp DIR");
        std::process::exit(2);
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "unknown".to_owned());
    let file = std::path::Path::new(&dir).join(format!(
        "{}_{}",
        var("COVE_ACCOUNT_ID"),
        var("COVE_REGION")
    ));
    let stamp = format!("{}.{:09}\n", now.as_secs(), now.subsec_nanos());
    if let Err(e) = std::fs::write(&file, stamp) {
        eprintln!("spawn-stamp: cannot write {}: {e}", file.display());
        std::process::exit(1);
    }
}
