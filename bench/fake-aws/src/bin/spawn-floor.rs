//! spawn-floor: the least it costs to run COUNT copies of a command, CONCURRENCY at a time,
//! from a tokio program: spawn (own process group, stdin closed), read stdout and stderr to
//! the end, reap. This is the child half of the benchmark floor; bench/run measures its wall
//! time and CPU (rusage, children included) and compares cove with it.
//!
//! usage: spawn-floor --count N --concurrency C -- COMMAND [ARGS...]
//! prints {"count": N, "concurrency": C, "wall_ms": F, "failed": N}

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

fn die(msg: &str) -> ! {
    eprintln!(
        "spawn-floor: {msg}\nusage: spawn-floor --count N --concurrency C -- COMMAND [ARGS...]"
    );
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut count: Option<usize> = None;
    let mut concurrency: Option<usize> = None;
    let mut command: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--count" | "--concurrency" => {
                let v = args
                    .get(i + 1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| die("expected a number"));
                if args[i] == "--count" {
                    count = Some(v)
                } else {
                    concurrency = Some(v)
                }
                i += 2;
            }
            "--" => {
                command = args[i + 1..].to_vec();
                break;
            }
            other => die(&format!("unknown argument `{other}`")),
        }
    }
    let (Some(count), Some(concurrency)) = (count, concurrency) else {
        die("--count and --concurrency are required")
    };
    if command.is_empty() || concurrency == 0 {
        die("a command and a concurrency of at least 1 are required");
    }
    let program = Arc::new(command[0].clone());
    let rest = Arc::new(command[1..].to_vec());

    let semaphore = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let mut failed = 0usize;
    let mut tally = |r: Result<bool, tokio::task::JoinError>| {
        if !matches!(r, Ok(true)) {
            failed += 1;
        }
    };
    for _ in 0..count {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore open");
        let (program, rest) = (program.clone(), rest.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let mut cmd = Command::new(program.as_str());
            cmd.args(rest.iter())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            matches!(cmd.output().await, Ok(out) if out.status.success())
        });
        while let Some(r) = tasks.try_join_next() {
            tally(r);
        }
    }
    while let Some(r) = tasks.join_next().await {
        tally(r);
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{{\"count\": {count}, \"concurrency\": {concurrency}, \"wall_ms\": {wall_ms:.3}, \"failed\": {failed}}}"
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
