//! Image conversions through a running hub: an image pushed to the reference registry, the
//! hub's conversion routes and the jobs they leave.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use testkit::{OciLayout, RegistryServer};

use super::hub::{HubServer, body_json};

/// The configuration of a hub that converts from the registry on loopback.
pub const PRIVATE_NETWORKS: &str = "[images]\nallow-private-networks = true\n";

/// An image of one layer holding `files` (path, content), pushed as `name` (`repo:tag`).
pub fn push_image(
    registry: &RegistryServer,
    work: &std::path::Path,
    name: &str,
    files: &[(&str, Vec<u8>)],
) {
    let dir = work.join(name.replace([':', '/'], "-"));
    let image = OciLayout::new(&dir, "v1");
    let mut layer = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        layer
            .append_data(&mut header, path, content.as_slice())
            .unwrap();
    }
    image.add_layer(&layer.into_inner().unwrap());
    image.configure(&[
        "--config.entrypoint",
        "/bin/app",
        "--config.env",
        "MODE=hub",
    ]);
    registry.push(&image.source(), name, &[]);
}

/// An `application/x-www-form-urlencoded` body.
pub fn urlencoded(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Job `id` as its owner (whose `token` this is) reads it.
pub fn job(hub: &HubServer, token: &str, id: &str) -> Value {
    let path = format!("/api/v1/jobs/{id}");
    body_json(hub.with(Method::GET, &path, token).send().unwrap()).1
}

/// Polls job `id` until it has ended.
pub fn wait_job(hub: &HubServer, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = job(hub, token, id);
        if !matches!(status["state"].as_str(), Some("queued" | "running")) {
            return status;
        }
        assert!(Instant::now() < deadline, "job still running: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `data:` lines of `/listen/<id>` until the stream ends.
pub fn events(hub: &HubServer, id: &str) -> Vec<Value> {
    let response = hub.get(&format!("/listen/{id}"));
    assert_eq!(response.status().as_u16(), 200);
    BufReader::new(response)
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| {
            l.strip_prefix("data: ")
                .map(|d| serde_json::from_str(d).unwrap())
        })
        .collect()
}

pub fn convert(hub: &HubServer, token: &str, body: Value) -> (u16, Value) {
    body_json(
        hub.with(Method::POST, "/api/v1/convert", token)
            .json(&body)
            .send()
            .unwrap(),
    )
}

/// Panics if one of `secrets` is in `seen` (pages, answers), the hub's log or any file of
/// its data directory (the database, flists, chunks).
pub fn assert_kept_nowhere(hub: &HubServer, mut seen: Vec<u8>, secrets: &[&str]) {
    for file in walkdir::WalkDir::new(hub.data())
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        seen.extend(std::fs::read(file.path()).unwrap());
    }
    seen.extend(hub.log().into_bytes());
    for secret in secrets {
        assert!(
            !seen.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} was kept or shown"
        );
    }
}
