//! Who may change what on a running hub: every route that changes something, tried with
//! every kind of bad credential (none, malformed, a bad signature, expired, `alg: none`,
//! revoked, an algorithm swapped for its issuer's, another user's token, an `active-user`
//! the token does not hold): all refused with the documented code, and nothing changed.
//! Then what good credentials grant: tokens of configured issuers (EdDSA, ES256, ES384,
//! RS256), `memberof` and ItsYou.Online scopes with the `active-user` cookie, and 0-hub's
//! own API tokens, with the expiry and revocation 0-hub never had.

mod common;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::hub::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use reqwest::blocking::multipart::{Form, Part};
use serde_json::{Value, json};

/// 0-hub's `threebot-seed` of these tests.
const SEED: [u8; 32] = [42; 32];

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Key pairs of each issuer algorithm, made by openssl.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn make() -> Option<Keys> {
        if !testkit::need("openssl") {
            return None;
        }
        let keys = Keys {
            dir: tempfile::tempdir().unwrap(),
        };
        for (name, args) in [
            ("ed", &["-algorithm", "ed25519"][..]),
            (
                "es256",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            ),
            (
                "es384",
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            ),
            (
                "rs",
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            ),
        ] {
            let private = keys.private(name);
            common::run(
                std::process::Command::new("openssl")
                    .arg("genpkey")
                    .args(args)
                    .arg("-out")
                    .arg(&private),
            );
            common::run(
                std::process::Command::new("openssl")
                    .args(["pkey", "-pubout", "-in"])
                    .arg(&private)
                    .arg("-out")
                    .arg(keys.public(name)),
            );
        }
        Some(keys)
    }

    fn private(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pem"))
    }

    fn public(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.pub.pem"))
    }

    /// The `[auth]` part of the hub configuration: four issuers and 0-hub tokens.
    fn config(&self) -> String {
        let issuer = |iss: &str, algorithm: &str, key: &str, audience: &str| {
            format!(
                "[[auth.issuers]]\nissuer = \"{iss}\"\nalgorithm = \"{algorithm}\"\npublic-key-file = \"{}\"\n{audience}\n",
                self.public(key).display()
            )
        };
        [
            "[limits]\nwrite-rate = 10000\nwrite-burst = 10000\n".to_owned(),
            issuer("https://login.example/ed", "EdDSA", "ed", ""),
            issuer("https://login.example/es256", "ES256", "es256", ""),
            issuer("https://login.example/es384", "ES384", "es384", ""),
            issuer("https://login.example/rs", "RS256", "rs", "audience = \"flisthub\""),
            format!(
                "[auth.zero-hub]\nseed = \"{}\"\nmax-age = \"30d\"\nusers-map = {{ official-apps = \"tfofficial.3bot\" }}\n",
                hex::encode(SEED)
            ),
        ]
        .concat()
    }

    /// A JWT of issuer `name` (`ed`, `es256`, `es384`, `rs`) with `claims`.
    fn jwt(&self, name: &str, claims: &Value) -> String {
        let pem = std::fs::read(self.private(name)).unwrap();
        let (algorithm, key) = match name {
            "ed" => (Algorithm::EdDSA, EncodingKey::from_ed_pem(&pem).unwrap()),
            "es256" => (Algorithm::ES256, EncodingKey::from_ec_pem(&pem).unwrap()),
            "es384" => (Algorithm::ES384, EncodingKey::from_ec_pem(&pem).unwrap()),
            _ => (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem).unwrap()),
        };
        jsonwebtoken::encode(&Header::new(algorithm), claims, &key).unwrap()
    }
}

fn hs256(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// A token whose header says `alg: none`, with no signature.
fn unsigned(claims: &Value) -> String {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

/// Everything a client can see of the namespace: every repository with its time, every
/// listing, every tag listing, every md5.
fn namespace_state(hub: &HubServer) -> String {
    let mut state = hub.get("/api/repositories").text().unwrap();
    state.push_str(&hub.get("/api/flist").text().unwrap());
    let (_, repositories) = body_json(hub.get("/api/repositories"));
    for repository in repositories.as_array().unwrap() {
        let name = repository["name"].as_str().unwrap();
        let (_, listing) = body_json(hub.get(&format!("/api/flist/{name}")));
        state.push_str(&listing.to_string());
        for row in listing.as_array().unwrap() {
            let entry = row["name"].as_str().unwrap();
            match row["type"].as_str().unwrap() {
                "tag" => state.push_str(
                    &hub.get(&format!("/api/flist/{name}/tags/{entry}"))
                        .text()
                        .unwrap(),
                ),
                "regular" | "symlink" => {
                    state.push_str(&hub.get(&format!("/{name}/{entry}.md5")).text().unwrap())
                }
                _ => {}
            }
        }
    }
    state
}

/// Every route that changes something, as (method, path, body). `alice` owns `hello`,
/// the symlink `latest`, tag `v1` and taglink `t`.
fn changing_routes() -> Vec<(Method, &'static str, Body)> {
    let mut routes = vec![
        (Method::GET, "/api/flist/me", Body::None),
        (Method::DELETE, "/api/flist/me/hello", Body::None),
        (Method::DELETE, "/api/flist/me/t", Body::None),
        (
            Method::DELETE,
            "/api/flist/me/t/crosstag/alice/v1",
            Body::None,
        ),
        (
            Method::DELETE,
            "/api/flist/me/v1/latest/tag/alice/hello",
            Body::None,
        ),
        (Method::POST, "/api/flist/me/upload", Body::Archive),
        (Method::POST, "/api/flist/me/upload-flist", Body::Flist),
        (
            Method::POST,
            "/api/flist/me/merge/merged",
            Body::Json("[\"alice/hello\"]"),
        ),
        (Method::POST, "/upload", Body::Archive),
        (Method::GET, "/api/v1/jobs", Body::None),
    ];
    for path in [
        "/api/flist/me/hello/link/l2",
        "/api/flist/me/l3/crosslink/alice/hello",
        "/api/flist/me/t2/crosstag/alice/v1",
        "/api/flist/me/v2/l4/tag/alice/hello",
        "/api/flist/me/hello/rename/renamed",
        "/api/flist/me/latest/rename/hello?force=true",
        "/api/flist/me/promote/alice/hello/copy",
    ] {
        routes.push((Method::GET, path, Body::None));
        routes.push((Method::POST, path, Body::None));
    }
    routes
}

#[derive(Clone, Copy)]
enum Body {
    None,
    Archive,
    Flist,
    Json(&'static str),
}

fn send(
    hub: &HubServer,
    method: &Method,
    path: &str,
    body: Body,
    authorization: Option<&str>,
    cookie: Option<&str>,
) -> (u16, String) {
    let mut request = client().request(method.clone(), format!("{}{path}", hub.url));
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    request = match body {
        Body::None => request,
        Body::Json(text) => request.body(text),
        Body::Archive => request.multipart(Form::new().part(
            "file",
            Part::bytes(small_tarball("new")).file_name("new.tar.gz"),
        )),
        Body::Flist => request.multipart(Form::new().part(
            "file",
            Part::bytes(b"not checked before auth".to_vec()).file_name("x.flist"),
        )),
    };
    let response = request.send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

/// alice's repository as `changing_routes` expects it, and a second flist for `team`.
fn populate(hub: &HubServer, alice: &str) {
    assert_eq!(
        hub.upload(alice, "hello.tar.gz", small_tarball("hello"))
            .status(),
        200
    );
    for path in [
        "/api/flist/me/hello/link/latest",
        "/api/flist/me/v1/latest/tag/alice/hello",
        "/api/flist/me/t/crosstag/alice/v1",
    ] {
        let (status, body) = body_json(hub.with(Method::GET, path, alice).send().unwrap());
        assert_eq!(status, 200, "{path}: {body}");
    }
}

/// A credential to try: what it is, the `Authorization` header, the cookie, and the status
/// and message it must get.
type Case<'a> = (&'a str, Option<String>, Option<&'a str>, u16, &'a str);

#[test]
fn bad_credentials_are_refused_on_every_changing_route_and_change_nothing() {
    let Some(keys) = Keys::make() else { return };
    let hub = HubServer::start(&keys.config());
    let alice = hub.token("alice", &["team"]);
    let bob = hub.token("bob", &[]);
    populate(&hub, &alice);
    let revoked = hub.token("alice", &[]);
    let out = hub.token_command(&["revoke", &revoked_id(&hub, &revoked)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let secret = std::fs::read(hub.data().join("token-secret")).unwrap();
    let claims = |exp: i64| json!({"iss": "flisthub", "sub": "alice", "iat": now() - 7200, "exp": exp, "jti": "x"});
    let rs_public = std::fs::read(keys.public("rs")).unwrap();
    let bearer = |token: &str| format!("Bearer {token}");
    let cases: Vec<Case> = vec![
        ("no token", None, None, 401, "no authorization provided"),
        (
            "another scheme",
            Some("Basic YWxpY2U6eA==".into()),
            None,
            400,
            "invalid authorization header",
        ),
        (
            "bearer without a token",
            Some("Bearer ".into()),
            None,
            400,
            "invalid authorization header",
        ),
        (
            "a bad signature",
            Some(bearer(&hs256(&[7; 32], &claims(now() + 3600)))),
            None,
            401,
            "invalid signature",
        ),
        (
            "an expired token",
            Some(bearer(&hs256(&secret, &claims(now() - 3600)))),
            None,
            401,
            "token expired",
        ),
        (
            "alg: none",
            Some(bearer(&unsigned(&claims(now() + 3600)))),
            None,
            401,
            "invalid token",
        ),
        (
            "a revoked token",
            Some(bearer(&revoked)),
            None,
            401,
            "token revoked",
        ),
        (
            // The RS256 issuer's public key used as an HS256 secret.
            "algorithm confusion",
            Some(bearer(&hs256(
                &rs_public,
                &json!({"iss": "https://login.example/rs", "sub": "alice", "exp": now() + 3600, "aud": "flisthub"}),
            ))),
            None,
            401,
            "signed with HS256",
        ),
        (
            "an unknown issuer",
            Some(bearer(&keys.jwt(
                "ed",
                &json!({"iss": "https://evil.example", "sub": "alice", "exp": now() + 3600}),
            ))),
            None,
            401,
            "unknown issuer",
        ),
        (
            "not a JWT",
            Some(bearer("a.b.c")),
            None,
            401,
            "invalid token",
        ),
        (
            "a 0-hub token of another seed",
            Some(bearer(&hub::zero_hub_token(&[9; 32], "alice", now()))),
            None,
            401,
            "invalid signature",
        ),
        (
            "a 0-hub token past max-age",
            Some(bearer(&hub::zero_hub_token(
                &SEED,
                "alice",
                now() - 31 * 86_400,
            ))),
            None,
            401,
            "token expired",
        ),
        (
            "another user's token acting as alice",
            Some(bearer(&bob)),
            Some("active-user=alice"),
            403,
            "not an identity of this token",
        ),
        (
            "an active-user the token does not hold",
            Some(bearer(&alice)),
            Some("active-user=mallory"),
            403,
            "not an identity of this token",
        ),
    ];

    let before = namespace_state(&hub);
    for (label, authorization, cookie, status, message) in &cases {
        for (method, path, body) in changing_routes() {
            let (got, text) = send(&hub, &method, path, body, authorization.as_deref(), *cookie);
            assert_eq!(got, *status, "{label}: {method} {path}: {text}");
            assert!(text.contains(message), "{label}: {method} {path}: {text}");
            assert!(
                !text.contains("\"success\""),
                "{label}: {method} {path}: {text}"
            );
        }
    }
    assert_eq!(
        namespace_state(&hub),
        before,
        "a refused request changed something"
    );

    // bob's own token does whatever bob may do, in bob's repository only.
    let alice_before = hub.get("/api/flist/alice").text().unwrap();
    for (method, path, body) in changing_routes() {
        send(&hub, &method, path, body, Some(&bearer(&bob)), None);
    }
    assert_eq!(hub.get("/api/flist/alice").text().unwrap(), alice_before);
    let (_, bobs) = body_json(hub.get("/api/flist/bob"));
    let names: Vec<&str> = bobs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"copy.flist") && names.contains(&"new.flist"),
        "{names:?}"
    );
}

/// The id of a token minted here, from `token list --json`.
fn revoked_id(hub: &HubServer, token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let id = claims["jti"].as_str().unwrap().to_owned();
    let out = hub.token_command(&["list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str())
    );
    id
}

fn username(hub: &HubServer, token: &str, cookie: Option<&str>) -> (u16, Value) {
    let mut request = client()
        .get(format!("{}/api/flist/me", hub.url))
        .header("Authorization", format!("bEaReR {token}"));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let (status, body) = body_json(request.send().unwrap());
    (
        status,
        if status == 200 {
            body["payload"]["username"].clone()
        } else {
            body["message"].clone()
        },
    )
}

#[test]
fn issuers_memberof_and_zero_hub_tokens_grant_what_they_say() {
    let Some(keys) = Keys::make() else { return };
    let hub = HubServer::start(&keys.config());
    let exp = now() + 3600;

    for (name, iss) in [
        ("ed", "https://login.example/ed"),
        ("es256", "https://login.example/es256"),
        ("es384", "https://login.example/es384"),
        ("rs", "https://login.example/rs"),
    ] {
        let token = keys.jwt(
            name,
            &json!({"iss": iss, "sub": "carol", "exp": exp, "aud": "flisthub"}),
        );
        assert_eq!(
            username(&hub, &token, None),
            (200, json!("carol")),
            "{name}"
        );
        let no_exp = keys.jwt(
            name,
            &json!({"iss": iss, "sub": "carol", "aud": "flisthub"}),
        );
        assert_eq!(
            username(&hub, &no_exp, None).0,
            401,
            "{name}: exp is required"
        );
        // The key of another issuer.
        let other = if name == "ed" { "es256" } else { "ed" };
        let forged = keys.jwt(
            other,
            &json!({"iss": iss, "sub": "carol", "exp": exp, "aud": "flisthub"}),
        );
        assert_eq!(
            username(&hub, &forged, None).0,
            401,
            "{name} signed by {other}"
        );
    }
    let wrong_audience = keys.jwt(
        "rs",
        &json!({"iss": "https://login.example/rs", "sub": "carol", "exp": exp, "aud": "elsewhere"}),
    );
    let (status, message) = username(&hub, &wrong_audience, None);
    assert_eq!(status, 401);
    assert!(message.as_str().unwrap().contains("aud"), "{message}");

    // memberof and ItsYou.Online scopes, chosen with the cookie.
    let member = keys.jwt(
        "es256",
        &json!({
            "iss": "https://login.example/es256", "sub": "carol", "exp": exp,
            "memberof": ["team"], "scope": ["user:memberof:org.example", "user:name"],
        }),
    );
    assert_eq!(
        username(&hub, &member, Some("active-user=team")),
        (200, json!("team"))
    );
    assert_eq!(
        username(&hub, &member, Some("lang=en; active-user=org.example")),
        (200, json!("org.example"))
    );
    assert_eq!(
        username(&hub, &member, Some("active-user=carol")),
        (200, json!("carol"))
    );
    assert_eq!(username(&hub, &member, Some("active-user=name")).0, 403);
    let form = Form::new().part(
        "file",
        Part::bytes(small_tarball("team")).file_name("t.tar.gz"),
    );
    let response = hub
        .with(Method::POST, "/api/flist/me/upload", &member)
        .header("Cookie", "active-user=team")
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        hub.get("/team/t.flist").status(),
        200,
        "published in the repository acted as"
    );

    // 0-hub tokens: accepted as they are, with the virtual users of the users map.
    let official = hub::zero_hub_token(&SEED, "tfofficial.3bot", now() - 86_400);
    assert_eq!(
        username(&hub, &official, None),
        (200, json!("tfofficial.3bot"))
    );
    assert_eq!(
        username(&hub, &official, Some("active-user=official-apps")),
        (200, json!("official-apps"))
    );
    assert_eq!(
        username(&hub, &official, Some("active-user=other-apps")).0,
        403
    );
    let someone = hub::zero_hub_token(&SEED, "someone.3bot", now());
    assert_eq!(
        username(&hub, &someone, Some("active-user=official-apps")).0,
        403
    );
    // Revoked one by one, given whole.
    let out = hub.token_command(&["revoke", &official]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        username(&hub, &official, None),
        (401, json!("token revoked"))
    );
    assert!(official.ends_with('='), "PyNaCl pads: {official}");
    assert_eq!(
        username(&hub, official.trim_end_matches('='), None),
        (401, json!("token revoked")),
        "the same token without its padding"
    );
    assert_eq!(username(&hub, &someone, None).0, 200, "only that token");

    // Every token of a user issued until now, whoever issued it.
    let minted = hub.token("carol", &[]);
    assert_eq!(username(&hub, &minted, None).0, 200);
    let iat = keys.jwt(
        "ed",
        &json!({"iss": "https://login.example/ed", "sub": "carol", "exp": exp, "iat": now()}),
    );
    let out = hub.token_command(&["revoke", "--user", "carol"]);
    assert!(out.status.success());
    for token in [&minted, &iat, &member] {
        assert_eq!(username(&hub, token, None), (401, json!("token revoked")));
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(
        username(&hub, &hub.token("carol", &[]), None).0,
        200,
        "a token minted after"
    );
    let later = keys.jwt(
        "ed",
        &json!({"iss": "https://login.example/ed", "sub": "carol", "exp": exp, "iat": now()}),
    );
    assert_eq!(username(&hub, &later, None).0, 200);

    // The CLI refuses what it cannot mint.
    let out = hub.token_command(&["create", "--user", "carol", "--ttl", "9999d"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max-token-ttl"));
    let out = hub.token_command(&["create", "--user", "a<b"]);
    assert!(!out.status.success());
    let out = hub.token_command(&["revoke", "no-such-token"]);
    assert!(!out.status.success());
    let out = hub.token_command(&["list"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    let heading: Vec<&str> = listing.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        heading,
        [
            "ID", "USER", "MEMBEROF", "CREATED", "EXPIRES", "STATE", "NOTE"
        ]
    );
    // Aligned: each row's second column starts where the heading's does.
    let user_column = listing.find("USER").unwrap();
    for row in listing.lines().skip(1) {
        let id_end = row.find(' ').unwrap();
        let start = id_end + row[id_end..].find(|c: char| c != ' ').unwrap();
        assert_eq!(start, user_column, "{listing}");
    }
    assert!(listing.contains("revoked"), "{listing}");
}

#[test]
fn a_missing_issuer_key_stops_the_hub_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[[auth.issuers]]\nissuer = \"x\"\nalgorithm = \"ES256\"\npublic-key-file = \"/nonexistent.pem\"\n",
    )
    .unwrap();
    let out = common::flisthub(
        dir.path(),
        args![
            "--config",
            config,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().join("d")
        ],
    );
    let stderr = common::fails(out);
    assert!(stderr.contains("/nonexistent.pem"), "{stderr}");
}
