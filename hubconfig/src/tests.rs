//! The configuration: the embedded defaults, files over them, and what is refused.

use std::time::Duration;

use super::*;

#[test]
fn the_embedded_defaults_parse_and_pass_the_checks() {
    let config: Config = Figment::from(Toml::string(DEFAULT_CONFIG))
        .extract()
        .unwrap();
    config.check().unwrap();
    assert_eq!(config.server.listen.port(), 5555);
    assert_eq!(config.limits.upload_size, 10 << 30);
    assert!(config.store.is_none());
    assert!(config.auth.zero_hub.is_none());
}

#[test]
fn a_file_overrides_and_unknown_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"0.0.0.0:8080\"\n[limits]\nupload-size = \"2GiB\"\n",
    )
    .unwrap();
    let config = Config::load(Some(&file)).unwrap();
    assert_eq!(config.server.listen.port(), 8080);
    assert_eq!(config.limits.upload_size, 2 << 30);
    assert_eq!(
        config.limits.entries, 10_000_000,
        "untouched keys keep defaults"
    );

    std::fs::write(&file, "[server]\nlisen = \"0.0.0.0:8080\"\n").unwrap();
    let err = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(err.contains("lisen"), "{err}");

    std::fs::write(&file, "[limits]\nupload-size = \"lots\"\n").unwrap();
    let err = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(err.contains("lots") && err.contains("upload-size"), "{err}");

    let err = Config::load(Some(&dir.path().join("missing.toml")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn limits_that_would_let_a_few_clients_hold_the_hub_are_refused() {
    let err = Config::from_toml("[limits]\nconcurrent-uploads = 4\nuploads-per-identity = 2\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("limits.uploads-per-identity = 2")
            && err.contains("two identities cannot hold every upload slot"),
        "{err}"
    );
    Config::from_toml("[limits]\nconcurrent-uploads = 5\nuploads-per-identity = 2\n").unwrap();
    let err = Config::from_toml("[server]\nheader-read-timeout = \"0s\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.header-read-timeout"), "{err}");
    let err = Config::from_toml("[limits]\nupload-rate-window = \"100ms\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("limits.upload-rate-window"), "{err}");
}

#[test]
fn routes_must_be_public_network_stores() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[publish]\nroutes = [\"dir:///srv/store\"]\n").unwrap();
    let err = Config::load(Some(&file)).unwrap_err().to_string();
    assert!(err.contains("publish.routes"), "{err}");
    std::fs::write(
        &file,
        "[publish]\nroutes = [\"zdb://hub.example:9900/flists\"]\n",
    )
    .unwrap();
    Config::load(Some(&file)).unwrap();
}

#[test]
fn the_scrub_runs_daily_by_default_and_off_turns_it_off() {
    let config = Config::from_toml("").unwrap();
    assert_eq!(config.scrub.interval, Duration::from_secs(24 * 3600));
    assert!(!config.scrub.deep);
    for off in ["off", "0s"] {
        let config = Config::from_toml(&format!("[scrub]\ninterval = \"{off}\"\n")).unwrap();
        assert!(config.scrub.interval.is_zero(), "{off}");
    }
    let err = Config::from_toml("[scrub]\ninterval = \"never\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("never") && err.contains("off"), "{err}");
}
