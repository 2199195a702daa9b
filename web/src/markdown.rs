//! Readmes: markdown rendered to HTML, then cleaned by ammonia, which keeps a list of safe
//! tags and attributes and drops the rest (raw HTML, `<script>`, event handlers,
//! `javascript:` links). Links get `rel="noopener noreferrer nofollow"`.

use pulldown_cmark::{Event, Options, Parser, html};

/// Readmes longer than this are cut before rendering (metadata is bounded at publish, but
/// rendering should not depend on that).
const MAX_README: usize = 256 << 10;

/// The readme as clean HTML.
pub fn render(markdown: &str) -> String {
    let mut end = markdown.len().min(MAX_README);
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    // Raw HTML is removed, not shown as text: ammonia would keep the harmless part of it,
    // but a readme's raw HTML is rarely meant for this page.
    let events = Parser::new_ext(&markdown[..end], options)
        .filter(|e| !matches!(e, Event::Html(_) | Event::InlineHtml(_)));
    let mut rendered = String::with_capacity(end * 2);
    html::push_html(&mut rendered, events);
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into())
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&rendered)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn hostile_markdown_is_cleaned() {
        let html = render(
            "# Hi\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n\
             [click](javascript:alert(3)) [ok](https://example.org)\n\n**bold**",
        );
        assert!(html.contains("<h1>Hi</h1>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("https://example.org"), "{html}");
        for bad in ["<script", "onerror", "javascript:", "<img"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }
}
