//! Login, logout, the account switcher and the caller's API tokens. Every form is checked
//! by [`session::check_form`]; every change goes through the hub's services as the caller
//! the hub's authenticator made of the session's token.

use std::collections::HashMap;
use std::time::Duration;

use axum::Form;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use hub::{Credentials, Error, Result, TokenRecord};
use maud::{Markup, html};

use crate::render::{copyable, page, time};
use crate::session::{
    ACTIVE_USER_COOKIE, CSRF_COOKIE, LoggedIn, SESSION_COOKIE, check_form, cookie, logged_in,
    required, set_cookie,
};
use crate::{State, Web};

/// How long a login lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Lifetimes offered for new tokens, in days.
const TOKEN_DAYS: [u64; 4] = [1, 7, 30, 90];

/// A form's fields.
pub(crate) type Fields = Form<HashMap<String, String>>;

/// A field of a form.
pub(crate) fn field<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields.get(name).map(String::as_str)
}

/// `GET /login`: by account, or by pasting an API token.
pub async fn login_page(web: State, headers: HeaderMap) -> Result<Response> {
    login_form(&web, &headers, StatusCode::OK, None)
}

fn login_form(
    web: &Web,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response> {
    // The double-submit token: the cookie's, or a new one set with this page.
    let existing = cookie(headers, CSRF_COOKIE);
    let csrf = existing.clone().unwrap_or_else(random_token);
    let body = html! {
        h1 { "Log in" }
        @if let Some(error) = error { p.error role="alert" { (error) } }
        h2 { "With an account" }
        form.stack action="/login" method="post" {
            input type="hidden" name="csrf" value=(csrf);
            label for="name" { "Account" }
            input #name name="name" autocomplete="username" required;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
        h2 { "With an API token" }
        form.stack action="/login" method="post" {
            input type="hidden" name="csrf" value=(csrf);
            label for="token" { "Token" }
            input #token type="password" name="token" autocomplete="off" required;
            button type="submit" { "Log in with this token" }
        }
    };
    let mut response = page(&web.shell("Log in", None), status, &body.into_string());
    if existing.is_none() {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(web, CSRF_COOKIE, &csrf, true, 3600),
        );
    }
    Ok(response)
}

/// `POST /login`.
pub async fn login(web: State, headers: HeaderMap, Form(fields): Fields) -> Result<Response> {
    check_form(&web, &headers, None, field(&fields, "csrf"))?;
    let hub = &web.hub;
    let (user, token, owned) =
        if let Some(token) = field(&fields, "token").filter(|t| !t.is_empty()) {
            let authorization = format!("bearer {}", token.trim());
            let caller = hub
                .auth()
                .authenticate(Credentials {
                    authorization: Some(authorization.as_bytes()),
                    active_user: None,
                })
                .await;
            match caller {
                Ok(caller) => (caller.user, token.trim().to_owned(), false),
                Err(_) => {
                    return login_form(
                        &web,
                        &headers,
                        StatusCode::UNAUTHORIZED,
                        Some("This token is not valid here."),
                    );
                }
            }
        } else {
            let (name, password) = (
                field(&fields, "name").unwrap_or(""),
                field(&fields, "password").unwrap_or(""),
            );
            let Some(account) = hub.accounts().verify(name, password).await? else {
                return login_form(
                    &web,
                    &headers,
                    StatusCode::UNAUTHORIZED,
                    Some("Wrong account or password."),
                );
            };
            // The session acts with a token of its own, revoked at logout.
            let (_, token) = hub.tokens().create(
                &account.name,
                &account.memberof,
                SESSION_TTL,
                Some("web session"),
            )?;
            (account.name, token, true)
        };
    let cookie = hub
        .accounts()
        .open_session(&user, &token, owned, SESSION_TTL)
        .await?;
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &web,
            SESSION_COOKIE,
            &cookie,
            true,
            SESSION_TTL.as_secs() as i64,
        ),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&web, CSRF_COOKIE, "", true, 0),
    );
    Ok(response)
}

/// `GET /logout`: a button (a link must not log anyone out).
pub async fn logout_page(web: State, headers: HeaderMap) -> Result<Response> {
    let user = logged_in(&web, &headers).await?;
    let body = match &user {
        Some(user) => html! {
            h1 { "Log out" }
            form.stack action="/logout" method="post" {
                input type="hidden" name="csrf" value=(user.session.csrf);
                button type="submit" { "Log out" }
            }
        },
        None => html! { h1 { "Log out" } p { "You are not logged in." } },
    };
    Ok(page(
        &web.shell("Log out", user.as_ref()),
        StatusCode::OK,
        &body.into_string(),
    ))
}

/// `POST /logout`: ends the session (and revokes the token it minted).
pub async fn logout(web: State, headers: HeaderMap, Form(fields): Fields) -> Result<Response> {
    let user = logged_in(&web, &headers).await?;
    if let Some(user) = &user {
        check_form(&web, &headers, Some(user), field(&fields, "csrf"))?;
        if let Some(token) = web.hub.accounts().end_session(&user.cookie).await? {
            web.hub.tokens().revoke(&token)?;
        }
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&web, SESSION_COOKIE, "", true, 0),
    );
    Ok(response)
}

/// `POST /account`: act as another of the caller's identities.
pub async fn switch(web: State, headers: HeaderMap, Form(fields): Fields) -> Result<Response> {
    let user = required(&web, &headers).await?;
    check_form(&web, &headers, Some(&user), field(&fields, "csrf"))?;
    let wanted = field(&fields, "active").unwrap_or("").to_owned();
    let caller = &user.caller;
    if wanted != caller.user && !caller.accounts.contains(&wanted) {
        return Err(Error::Forbidden("not an identity of this login".into()));
    }
    let active = (wanted != caller.user).then(|| wanted.clone());
    web.hub.accounts().set_active(&user.cookie, active).await?;
    let mut response = Redirect::to("/tokens").into_response();
    // As 0-hub's UI does, for API calls made from this browser.
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &web,
            ACTIVE_USER_COOKIE,
            &hub::encode_segment(&wanted),
            false,
            SESSION_TTL.as_secs() as i64,
        ),
    );
    Ok(response)
}

/// `GET /token` (0-hub's token page): the tokens page.
pub async fn token_redirect() -> Redirect {
    Redirect::to("/tokens")
}

/// `GET /tokens`: the caller's tokens, a form to make one.
pub async fn tokens_page(web: State, headers: HeaderMap) -> Result<Response> {
    let Some(user) = logged_in(&web, &headers).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    tokens_view(&web, &user, None)
}

/// `POST /tokens`: `action=create` (with `days` and `note`) or `action=revoke` (with `id`).
pub async fn tokens_post(web: State, headers: HeaderMap, Form(fields): Fields) -> Result<Response> {
    let user = required(&web, &headers).await?;
    check_form(&web, &headers, Some(&user), field(&fields, "csrf"))?;
    if web.hub.config().server.readonly {
        // As the API's writes: a mirror changes nothing.
        return Err(Error::Readonly);
    }
    let tokens = web.hub.tokens();
    match field(&fields, "action") {
        Some("create") => {
            let days: u64 = field(&fields, "days")
                .and_then(|d| d.parse().ok())
                .filter(|d| TOKEN_DAYS.contains(d))
                .ok_or_else(|| Error::BadRequest("choose one of the lifetimes offered".into()))?;
            let note = field(&fields, "note")
                .map(str::trim)
                .filter(|n| !n.is_empty());
            if note.is_some_and(|n| n.len() > 200) {
                return Err(Error::BadRequest("a note has at most 200 bytes".into()));
            }
            let (_, token) = tokens.create(
                &user.caller.user,
                &user.caller.accounts,
                Duration::from_secs(days * 86_400),
                note,
            )?;
            tokens_view(&web, &user, Some(&token))
        }
        Some("revoke") => {
            let id = field(&fields, "id").unwrap_or("");
            // Only the caller's own tokens: another's id is as unknown as a wrong one.
            if !own_tokens(&web, &user)?.iter().any(|t| t.id == id) {
                return Err(Error::NotFound("no such token of yours".into()));
            }
            tokens.revoke(id)?;
            Ok(Redirect::to("/tokens").into_response())
        }
        _ => Err(Error::BadRequest("unknown action".into())),
    }
}

fn own_tokens(web: &Web, user: &LoggedIn) -> Result<Vec<TokenRecord>> {
    let mut own: Vec<_> = web
        .hub
        .tokens()
        .list()?
        .into_iter()
        .filter(|t| t.user == user.caller.user && t.note.as_deref() != Some("web session"))
        .collect();
    own.sort_by_key(|t| std::cmp::Reverse(t.created));
    Ok(own)
}

fn tokens_view(web: &Web, user: &LoggedIn, new: Option<&str>) -> Result<Response> {
    let own = own_tokens(web, user)?;
    let public = web.hub.config().public_url();
    let body: Markup = html! {
        h1 { "API tokens" }
        @if let Some(token) = new {
            div.secret role="status" {
                p { b { "Your new token" } " (shown once: keep it now)" }
                (copyable("token", token))
            }
            h2 { "Use it" }
            pre { (format!("curl -H \"Authorization: bearer {token}\" {public}/api/flist/me")) }
        }
        h2 { "New token" }
        form.stack action="/tokens" method="post" {
            input type="hidden" name="csrf" value=(user.session.csrf);
            input type="hidden" name="action" value="create";
            label for="note" { "Note (what it is for)" }
            input #note name="note" maxlength="200";
            label for="days" { "Valid for" }
            select #days name="days" {
                @for days in TOKEN_DAYS { option value=(days) selected[days == 30] { (days) (if days == 1 { " day" } else { " days" }) } }
            }
            button type="submit" { "Create token" }
        }
        h2 { "Your tokens" }
        @if own.is_empty() { p.muted { "None yet." } } @else {
            div.table-wrap { table {
                thead { tr { th { "Note" } th { "Created" } th { "Expires" } th { "State" } th {} } }
                tbody { @for t in &own {
                    tr {
                        td { (t.note.as_deref().unwrap_or("—")) }
                        td { (time(t.created)) }
                        td { (time(t.expires)) }
                        td { @if t.revoked.is_some() { "revoked" } @else { "valid" } }
                        td { @if t.revoked.is_none() {
                            form.inline action="/tokens" method="post" {
                                input type="hidden" name="csrf" value=(user.session.csrf);
                                input type="hidden" name="action" value="revoke";
                                input type="hidden" name="id" value=(t.id);
                                button.secondary type="submit" { "Revoke" }
                            }
                        } }
                    }
                } }
            } }
        }
    };
    let mut response = page(
        &web.shell("API tokens", Some(user)),
        StatusCode::OK,
        &body.into_string(),
    );
    // A page showing a secret is not kept by caches or the back button.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
