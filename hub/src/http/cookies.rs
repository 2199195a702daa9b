//! Reading a request's `Cookie` headers, shared by the API (0-hub's `active-user`) and the
//! web pages (session, CSRF), so that both read a cookie the same way.

use axum::http::{HeaderMap, header};

/// The `name=value` pairs of every `Cookie` header, trimmed, empty ones left out.
pub fn pairs(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
}

/// The value of the cookie `name`, without the double quotes RFC 6265 allows around it;
/// `None` when it is not sent or empty.
pub fn value(headers: &HeaderMap, name: &str) -> Option<String> {
    pairs(headers)
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_found_trimmed_and_unquoted() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            "session=x; active-user=tf-official-apps".parse().unwrap(),
        );
        headers.append(header::COOKIE, " quoted=\"q\" ;; empty=".parse().unwrap());
        assert_eq!(
            value(&headers, "active-user").as_deref(),
            Some("tf-official-apps")
        );
        assert_eq!(value(&headers, "session").as_deref(), Some("x"));
        assert_eq!(value(&headers, "quoted").as_deref(), Some("q"));
        assert_eq!(value(&headers, "empty"), None);
        assert_eq!(value(&headers, "absent"), None);
        assert_eq!(pairs(&headers).count(), 4);
    }
}
