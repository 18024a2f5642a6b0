//! A machine with no AWS credentials at all: the error says so, where cove looked and what to
//! run, whatever the instance metadata service answered. Nothing leaves loopback: the metadata
//! service is a local stand-in (`AWS_EC2_METADATA_SERVICE_ENDPOINT`), or turned off.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{Run, clean_cove};

/// A stand-in for the EC2 instance metadata service where it is turned off: every request
/// gets `403 Forbidden`, as IMDS answers then. Returns its URL and how many requests it got.
fn forbidding_imds() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, hits)
}

/// cove with no keys, no config files and no profile, its STS endpoint on loopback (never
/// reached: the credentials fail first), and IMDS at `imds` (turned off unless `imds_on`).
fn no_credentials(imds: &str, imds_on: bool, verbose: bool) -> Run {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = clean_cove(home.path());
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds);
    if imds_on {
        cmd.env_remove("AWS_EC2_METADATA_DISABLED");
    }
    if verbose {
        cmd.arg("-v");
    }
    Run::of(cmd.args(["--region", "us-east-1", "--", "true"]))
}

/// The sentence a person reads: no credentials, every place looked, what to run; not the SDK's
/// fragment, and no doubled period.
fn assert_says_no_credentials(run: &Run) {
    run.expect_code(2);
    let err = &run.stderr;
    for said in [
        "no AWS credentials found",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "~/.aws/config",
        "IAM Identity Center",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "container credentials",
        "instance metadata service (IMDS)",
        "`aws configure`",
        "`aws sso login --profile NAME`",
        "`aws login`",
    ] {
        assert!(err.contains(said), "says {said:?}: {err}");
    }
    assert!(!err.contains(".."), "no doubled period: {err}");
    assert!(
        !err.contains("request forbidden"),
        "the SDK's IMDS fragment is for -v: {err}"
    );
    assert!(run.stdout.is_empty(), "stdout is data only: {}", run.stdout);
}

#[test]
fn with_imds_forbidden_and_no_credentials_the_error_says_none_were_found_and_where_cove_looked() {
    let (imds, hits) = forbidding_imds();
    let run = no_credentials(&imds, true, false);
    assert!(
        hits.load(Ordering::SeqCst) >= 1,
        "the SDK asked the stand-in IMDS"
    );
    assert_says_no_credentials(&run);

    let verbose = no_credentials(&imds, true, true);
    verbose.expect_code(2);
    assert!(
        verbose
            .stderr
            .contains("IMDS is disabled or the caller has insufficient permissions"),
        "-v keeps the SDK's wording: {}",
        verbose.stderr
    );
}

#[test]
fn with_imds_turned_off_and_no_credentials_the_error_is_the_same_and_imds_is_not_asked() {
    let (imds, hits) = forbidding_imds();
    let run = no_credentials(&imds, false, false);
    assert_says_no_credentials(&run);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "AWS_EC2_METADATA_DISABLED=true keeps the SDK off IMDS"
    );
}
