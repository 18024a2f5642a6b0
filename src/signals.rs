//! Interrupts. The first SIGINT, SIGTERM, SIGHUP or SIGQUIT stops the run: nothing new starts,
//! the children are stopped, and what finished is reported (exit 130). The second kills every
//! child's process group and exits at once, writing nothing more.

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

use crate::exit_code::Exit;
use crate::process::ProcessGroups;
use crate::stop::{Stop, StopReason};

/// Listens for interrupts for the rest of the run.
pub fn install(stop: Arc<Stop>, groups: Arc<ProcessGroups>) {
    tokio::spawn(handle(stop, groups));
}

async fn handle(stop: Arc<Stop>, groups: Arc<ProcessGroups>) {
    // SIGHUP (the terminal went away) and SIGQUIT count as interrupts too: children live in
    // their own process groups, so without this they would outlive cove.
    let kinds = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::quit(),
    ];
    let mut streams = Vec::new();
    for kind in kinds {
        match signal(kind) {
            Ok(stream) => streams.push(stream),
            Err(_) => {
                eprintln!(
                    "cove: warning: cannot listen for signals; an interrupt will not be reported"
                );
                return;
            }
        }
    }
    let next = async |streams: &mut Vec<tokio::signal::unix::Signal>| {
        let waits = streams.iter_mut().map(|s| Box::pin(s.recv()));
        futures::future::select_all(waits).await;
    };
    next(&mut streams).await;
    eprintln!(
        "cove: interrupted: stopping the running commands and reporting what finished (interrupt again to exit at once)"
    );
    stop.trigger(StopReason::Interrupted);
    next(&mut streams).await;
    groups.signal_all(Signal::SIGKILL);
    std::process::exit(Exit::Interrupted.code().into());
}
