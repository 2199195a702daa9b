//! A hub in this process, driven through its router with `tower::ServiceExt::oneshot`: no
//! port, no child process. The end-to-end tests of the workspace start the real binary; these
//! check shapes, rules and refusals quickly.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use hub::{Config, Hub};
use serde_json::Value;
use tower::ServiceExt;

pub struct TestHub {
    pub hub: Arc<Hub>,
    pub dir: tempfile::TempDir,
}

/// An answer: status, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// What a router answered, its body read whole.
    pub async fn read(response: axum::response::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 30)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl TestHub {
    /// A hub on a private data directory with the configuration `toml` over the defaults.
    pub async fn open(toml: &str) -> TestHub {
        let dir = tempfile::tempdir().unwrap();
        let hub = Self::open_in(&dir, toml).await;
        TestHub { hub, dir }
    }

    /// A hub on `dir` (a restart when a hub ran there before).
    pub async fn open_in(dir: &tempfile::TempDir, toml: &str) -> Arc<Hub> {
        let mut config = Config::from_toml(toml).unwrap();
        config.server.data_dir = Some(dir.path().join("data"));
        config.server.public_url = Some("http://hub.test".into());
        Arc::new(Hub::open(config).await.unwrap())
    }

    /// Closes the hub and opens it again on the same data directory.
    pub async fn restart(self, toml: &str) -> TestHub {
        let TestHub { hub, dir } = self;
        drop(hub);
        let hub = Self::open_in(&dir, toml).await;
        TestHub { hub, dir }
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = hub::router(Arc::clone(&self.hub))
            .oneshot(request)
            .await
            .unwrap();
        Answer::read(response).await
    }

    /// `method path`, with a bearer token if given.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>) -> Answer {
        let mut request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    /// Uploads `archive` as `file_name` with `token` (none when authentication is off).
    pub async fn upload(&self, token: Option<&str>, file_name: &str, archive: &[u8]) -> Answer {
        self.post_file(token, "/api/flist/me/upload", file_name, archive)
            .await
    }

    /// `upload-flist` of `flist` as `file_name`.
    pub async fn upload_flist(&self, token: Option<&str>, file_name: &str, flist: &[u8]) -> Answer {
        self.post_file(token, "/api/flist/me/upload-flist", file_name, flist)
            .await
    }

    /// `POST path` with a multipart form whose field `file` is `bytes`.
    pub async fn post_file(
        &self,
        token: Option<&str>,
        path: &str,
        file_name: &str,
        bytes: &[u8],
    ) -> Answer {
        let (request, body) = upload_request("POST", path, token, file_name, bytes);
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// Starts the hub's 0-db gateway on a free loopback port; its address. It stops with
    /// the returned token (dropped: stopped).
    pub async fn gateway(&self) -> (std::net::SocketAddr, tokio_util::sync::DropGuard) {
        let listener = hub::Gateway::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let gateway = hub::Gateway::new(
            &self.hub,
            &self.hub.config().gateway,
            format!("zdb://{address}"),
            stop.clone(),
        );
        tokio::spawn(Arc::new(gateway).serve(listener));
        (address, stop.drop_guard())
    }

    /// Serves the hub's HTTP interface on a free loopback port; its address. It stops with
    /// the returned token (dropped: stopped).
    pub async fn serve(&self) -> (std::net::SocketAddr, tokio_util::sync::DropGuard) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let app = hub::router(Arc::clone(&self.hub))
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stopped.cancelled_owned())
                .await
        });
        (address, stop.drop_guard())
    }

    /// A token minted by this hub for `user`.
    pub fn token(&self, user: &str) -> String {
        self.hub
            .tokens()
            .create(user, &[], std::time::Duration::from_secs(3600), None)
            .unwrap()
            .1
    }
}

/// An upload of `archive` as `file_name` to `/api/flist/me/upload` with `method` (any case)
/// and `token`: the request without its body, and the multipart body (to send whole, or in
/// pieces).
pub fn upload_request(
    method: &str,
    path: &str,
    token: Option<&str>,
    file_name: &str,
    archive: &[u8],
) -> (axum::http::request::Builder, Vec<u8>) {
    let boundary = "flisthub-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(archive);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        );
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    (request, body)
}

/// A gzip'd tar of one file `a` holding `content`.
pub fn tarball(content: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    builder
        .append_data(&mut header, "a", content.as_bytes())
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// A native flist of `files` empty files at the root, with the metadata given; its bytes.
pub fn flist_file(files: usize, metadata: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.flist");
    let mut writer = flist::FlistWriter::create(&path).unwrap();
    for (key, value) in metadata {
        writer.metadata_mut().set(*key, *value);
    }
    let node = flist::Node {
        kind: flist::NodeKind::Regular { size: 0 },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: flist::Timestamp::default(),
    };
    for i in 0..files {
        writer.add(format!("f{i}").as_bytes(), &node, &[]).unwrap();
    }
    writer.finish().unwrap();
    std::fs::read(&path).unwrap()
}
