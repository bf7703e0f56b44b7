//! The web console: server-rendered HTML pages (maud) for administrators and supervisors,
//! mounted at `/` next to the API. Assets (one CSS file, htmx, a few lines of JS) are embedded
//! in the binary.
//!
//! Every page goes through [`gate`]: the same session cookie as the API, the same privilege
//! table ([`crate::auth::required`], asked with the page's path under `/api/v1`, so pages and
//! API cannot disagree), CSRF on every state-changing request, multipart included (hidden `csrf_token` field, first in
//! a multipart form, or `X-CSRF-Token`), and
//! the user's campaigns profile applied by the page handlers exactly as the API applies it.
//! Strings come from the English and Spanish catalogues in [`i18n`].

pub mod account;
pub mod agent;
pub mod audit;
pub mod campaigns;
pub mod catalog;
pub mod dnc;
pub mod fields;
pub mod form;
pub mod i18n;
pub mod imports;
pub mod lists;
pub mod rules;

use crate::auth;
use crate::service::{Principal, ServiceError, Via};
use crate::state::AppState;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use campana_store::auth::TokenKind;
use campana_store::StoreError;
use i18n::{Lang, LANG_COOKIE};
use maud::{html, Markup, DOCTYPE};

/// The largest urlencoded form body read to find a CSRF token (uploads are multipart and
/// carry their token as their first part).
pub const MAX_FORM_BYTES: usize = 2 << 20;

/// What every page handler knows about the request.
#[derive(Clone)]
pub struct Ctx {
    pub p: Principal,
    pub csrf: String,
    pub lang: Lang,
    /// The request path (for the language selector's way back).
    pub path: String,
    /// What is wrong with the dialer (stalled, stopped), shown at the top of every page.
    pub dialer_alert: Option<String>,
}

impl Ctx {
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }
    pub fn tf(&self, key: &str, args: &[(&str, &str)]) -> String {
        self.lang.tf(key, args)
    }
    /// May this user open `path` with `method`? The API's privilege table decides.
    pub fn may(&self, method: Method, path: &str) -> bool {
        allowed(&self.p, &method, path)
    }
    /// The hidden CSRF field every form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf_token" value=(self.csrf); }
    }
}

fn allowed(p: &Principal, method: &Method, path: &str) -> bool {
    match auth::required(method, &format!("/api/v1{path}")) {
        Some(needed) => needed.is_empty() || needed.iter().any(|x| p.has(*x)),
        None => true,
    }
}

/// A page that could not be shown: rendered inside the layout by [`gate`].
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    /// Validation errors by field: a form shows them next to the fields.
    pub errors: Vec<campana_core::FieldError>,
}

pub type WebResult<T> = Result<T, WebError>;

impl WebError {
    pub fn not_found(message: impl Into<String>) -> Self {
        WebError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        WebError::new(StatusCode::FORBIDDEN, message)
    }
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        WebError { status, message: message.into(), errors: Vec::new() }
    }
}

impl From<ServiceError> for WebError {
    fn from(e: ServiceError) -> Self {
        let status = e.http_status();
        match e {
            ServiceError::Invalid(errors) => {
                let message = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
                WebError { status, message, errors }
            }
            other => WebError::new(status, other.to_string()),
        }
    }
}

impl From<crate::upload::SpoolError> for WebError {
    fn from(e: crate::upload::SpoolError) -> Self {
        WebError::new(e.http_status(), e.to_string())
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<crate::dialer::DialerError> for WebError {
    fn from(e: crate::dialer::DialerError) -> Self {
        ServiceError::from(e).into()
    }
}

/// Carried by an error response until [`gate`] renders it with the user's layout and language.
#[derive(Clone)]
struct ErrorPage(String);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.message.clone()).into_response();
        r.extensions_mut().insert(ErrorPage(self.message));
        r
    }
}

pub use crate::auth::{cookie, cookie_header, over_tls, public_url};

fn is_public(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/") || path.starts_with("/lang/")
}

/// Authenticates, checks CSRF and privileges, builds the [`Ctx`], and renders error pages.
/// Every form body (sign-in included) is refused with 422 if a field holds a control character
/// other than tab and line breaks ([`crate::service::bad_text`]).
pub async fn gate(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let lang = Lang::from_headers(req.headers());
    let path = req.uri().path().to_string();
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let (req, form_csrf) = if changes {
        match read_form(req).await {
            Ok(x) => x,
            Err(e) => return (e.status, e.message).into_response(),
        }
    } else {
        (req, None)
    };
    if is_public(&path) {
        return next.run(req).await;
    }
    let auth = match auth::session_cookie(req.headers()) {
        Some(secret) => s.store.authenticate(&secret).await.ok().flatten().filter(|a| a.kind == TokenKind::Session),
        None => None,
    };
    let Some(auth) = auth else {
        if req.method() == Method::GET {
            let next_url = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
            return Redirect::to(&format!("/login?next={}", urlencode(&next_url))).into_response();
        }
        return (StatusCode::UNAUTHORIZED, lang.t("auth.signed_out")).into_response();
    };
    let csrf = auth.csrf_token.clone().unwrap_or_default();
    let p = Principal::from_authenticated(auth);
    let health = s.dialer.health();
    let dialer_alert = (!health.is_ok()).then(|| lang.tf("alert.dialer", &[("reason", health.reason.as_deref().unwrap_or(&health.state))]));
    let ctx = Ctx { p, csrf, lang, path: path.clone(), dialer_alert };
    let method = req.method().clone();
    let mut req = req;
    if changes {
        let header = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
        let sent = header.or(form_csrf.as_deref());
        if !sent.is_some_and(|t| csrf_matches(t, &ctx.csrf)) {
            return render_error(&ctx, WebError::forbidden("missing or wrong CSRF token; reload the page and try again"));
        }
    }
    if !allowed(&ctx.p, &method, &path) {
        return render_error(&ctx, WebError::forbidden(ctx.t("error.forbidden")));
    }
    req.extensions_mut().insert(ctx.clone());
    let res = next.run(req).await;
    match res.extensions().get::<ErrorPage>().cloned() {
        Some(ErrorPage(msg)) => render_error(&ctx, WebError::new(res.status(), msg)),
        None => res,
    }
}

/// The largest first part of a multipart body read to find its CSRF token.
const MAX_MULTIPART_HEAD_BYTES: usize = 64 << 10;

/// Reads what the gate needs from a state-changing request's body, and hands the request back
/// whole: the `csrf_token` field of an urlencoded form (whose every field is checked for
/// control characters), or of a multipart form, where it must be the first part (the console's
/// upload forms put it there; the rest of the upload streams on unread). Other bodies carry
/// no form token (the `X-CSRF-Token` header must then be sent).
async fn read_form(req: Request) -> Result<(Request, Option<String>), WebError> {
    let ctype = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let essence = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "multipart/form-data" {
        return multipart_csrf(req, &ctype).await;
    }
    if essence != "application/x-www-form-urlencoded" {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| WebError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the form is larger than {MAX_FORM_BYTES} bytes")))?;
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes).unwrap_or_default();
    for (k, v) in &pairs {
        if let Some(why) = crate::service::bad_text(k).or_else(|| crate::service::bad_text(v)) {
            return Err(WebError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{k}: {why}")));
        }
    }
    let token = pairs.into_iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v);
    Ok((Request::from_parts(parts, axum::body::Body::from(bytes)), token))
}

/// The `csrf_token` first part of a multipart body; the body is rebuilt from the bytes read
/// and the rest of the stream.
async fn multipart_csrf(req: Request, ctype: &str) -> Result<(Request, Option<String>), WebError> {
    use futures::StreamExt;
    let Some(boundary) = ctype.split(';').map(str::trim).find_map(|p| p.strip_prefix("boundary=")) else { return Ok((req, None)) };
    let boundary = boundary.trim_matches('"').to_string();
    let (parts, body) = req.into_parts();
    let mut stream = body.into_data_stream();
    let mut head: Vec<u8> = Vec::new();
    let token = loop {
        if let Some(t) = first_part_token(&head, &boundary) {
            break t;
        }
        if head.len() > MAX_MULTIPART_HEAD_BYTES {
            break None;
        }
        match stream.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(WebError::new(StatusCode::BAD_REQUEST, format!("the upload could not be read: {e}"))),
            None => break first_part_token(&head, &boundary).flatten(),
        }
    };
    let rest = futures::stream::once(async move { Ok::<_, axum::Error>(bytes::Bytes::from(head)) }).chain(stream);
    Ok((Request::from_parts(parts, axum::body::Body::from_stream(rest)), token))
}

/// `Some(token)` when the first part of `body` is complete and is the `csrf_token` field,
/// `Some(None)` when it is complete and another field, `None` when more bytes are needed.
fn first_part_token(body: &[u8], boundary: &str) -> Option<Option<String>> {
    let delim = format!("--{boundary}");
    let start = find(body, delim.as_bytes())? + delim.len();
    let rest = &body[start..];
    let headers_end = find(rest, b"\r\n\r\n")?;
    let headers = String::from_utf8_lossy(&rest[..headers_end]).to_ascii_lowercase();
    let value = &rest[headers_end + 4..];
    let end = find(value, format!("\r\n{delim}").as_bytes())?;
    let named = headers.lines().any(|l| l.starts_with("content-disposition:") && l.contains("name=\"csrf_token\""));
    Some(named.then(|| String::from_utf8_lossy(&value[..end]).into_owned()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn csrf_matches(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && sent.len() == expected.len() && sent.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|x| x.trim_start_matches('=').to_string()).unwrap_or_default()
}

fn render_error(ctx: &Ctx, e: WebError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => ctx.t("error.not_found"),
        StatusCode::FORBIDDEN => ctx.t("error.forbidden_title"),
        StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => ctx.t("error.conflict"),
        _ => ctx.t("error.generic"),
    };
    let body = html! {
        div.error-page {
            p.error { (e.message) }
            p { a href="/campaigns" { (ctx.t("error.back")) } }
        }
    };
    (e.status, page(ctx, title, body)).into_response()
}

/// The layout: navigation (only what the user's role opens), language selector, sign-out.
pub fn page(ctx: &Ctx, title: &str, body: Markup) -> Markup {
    const NAV: &[(&str, &str)] = &[
        ("/campaigns", "nav.campaigns"),
        ("/settings-profiles", "nav.profiles"),
        ("/campaign-groups", "nav.campaign_groups"),
        ("/contact-lists", "nav.lists"),
        ("/dnc-lists", "nav.dnc"),
        ("/dispositions", "nav.dispositions"),
        ("/manager-tags", "nav.tags"),
        ("/scripts", "nav.scripts"),
        ("/agent-groups", "nav.agent_groups"),
        ("/users", "nav.users"),
        ("/roles", "nav.roles"),
        ("/calling-hours", "nav.calling_hours"),
        ("/audit", "nav.audit"),
        ("/agent", "nav.agent"),
    ];
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            (head(title))
            body hx-headers=(format!(r#"{{"X-CSRF-Token":"{}"}}"#, ctx.csrf)) {
                header.top {
                    a.brand href="/campaigns" { "Campana" }
                    nav {
                        @for (href, key) in NAV {
                            @if ctx.may(Method::GET, href) {
                                a href=(href) class=[ctx.path.starts_with(href).then_some("active")] { (ctx.t(key)) }
                            }
                        }
                    }
                    div.user {
                        (lang_selector(ctx.lang, &ctx.path))
                        a.who href="/account" id="account-link" title=(ctx.t("account.title")) { (ctx.p.user.input.username) }
                        form method="post" action="/logout" {
                            (ctx.csrf_field())
                            button.link type="submit" id="logout" { (ctx.t("nav.logout")) }
                        }
                    }
                }
                @if let Some(alert) = &ctx.dialer_alert {
                    div.alert.dialer-alert id="dialer-alert" role="alert" { (alert) }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Campana" }
            link rel="stylesheet" href="/assets/campana.css";
            script src="/assets/htmx.min.js" defer {}
            script src="/assets/campana.js" defer {}
        }
    }
}

fn lang_selector(current: Lang, back: &str) -> Markup {
    html! {
        span.lang {
            @for l in Lang::ALL {
                @if l == current { strong { (l.native_name()) } }
                @else { a href=(format!("/lang/{}?next={}", l.code(), urlencode(back))) id=(format!("lang-{}", l.code())) { (l.native_name()) } }
            }
        }
    }
}

/// One table helper for every listing: translated headers, rows of cells.
pub fn table(ctx: &Ctx, id: &str, headers: &[&str], rows: Vec<Vec<Markup>>) -> Markup {
    html! {
        @if rows.is_empty() { p.empty { (ctx.t("common.none_yet")) } }
        @else {
            table id=(id) {
                thead { tr { @for h in headers { th { (ctx.t(h)) } } } }
                tbody { @for r in rows { tr { @for c in r { td { (c) } } } } }
            }
        }
    }
}

/// A one-button POST form; `confirm` asks first (handled by campana.js).
pub fn post_button(ctx: &Ctx, action: &str, label: &str, confirm: Option<&str>, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (ctx.csrf_field())
            button type="submit" class=(class) { (label) }
        }
    }
}

/// A coloured dot with a label.
pub fn swatch(colour: &str, label: &str) -> Markup {
    html! { span.swatch { span.dot style=(format!("background:{colour}")) {} (label) } }
}

pub fn fmt_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A redirect after a successful POST (303: the browser follows with GET).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The same-site page a form was posted from (its `Referer`), else `default`.
pub fn back_to(h: &HeaderMap, default: &str) -> String {
    let referer = h.get(header::REFERER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let path = referer.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]));
    match path {
        Some(p) => safe_next(Some(p)),
        None => default.to_string(),
    }
}

// ---- sign-in, sign-out, language, assets ----

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only same-origin relative paths are followed after sign-in or a language change: one `/`
/// then no second `/` or `\` (browsers read `//host` and `/\host` as another site), and no
/// control characters (browsers drop tabs and newlines, so `/<TAB>/evil.example` becomes
/// `//evil.example`; a newline cannot go in a header at all). Anything else goes to `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n[1..].starts_with(['/', '\\']) && !n.contains('\\') && !n.chars().any(char::is_control) => {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn login_page(lang: Lang, next: &str, username: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang.t("login.title")))
            body.login {
                main.login {
                    h1 { "Campana" }
                    (lang_selector(lang, &format!("/login?next={}", urlencode(next))))
                    @if let Some(e) = error { p.error id="login-error" { (e) } }
                    form method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        label { (lang.t("login.username")) input type="text" name="username" value=(username) autofocus required autocomplete="username"; }
                        label { (lang.t("login.password")) input type="password" name="password" required autocomplete="current-password"; }
                        button type="submit" id="login-submit" { (lang.t("login.submit")) }
                    }
                }
            }
        }
    }
}

async fn login_form(headers: HeaderMap, Query(q): Query<NextQuery>) -> Markup {
    login_page(Lang::from_headers(&headers), &safe_next(q.next.as_deref()), "", None)
}

#[derive(serde::Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Password sign-in: the API's own [`crate::service::account::sign_in`] (same lockout, same uniform refusal).
async fn login_submit(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let lang = Lang::from_headers(&headers);
    let next = safe_next(f.next.as_deref());
    let refuse = |msg: String| (StatusCode::UNAUTHORIZED, login_page(lang, &next, &f.username, Some(&msg))).into_response();
    let failed = |e: ServiceError| (e.http_status(), login_page(lang, &next, &f.username, Some(&e.to_string()))).into_response();
    let user_id = match crate::service::account::sign_in(&s, &f.username, &f.password, Via::Console).await {
        Ok(Some(id)) => id,
        Ok(None) => return refuse(lang.t("login.invalid").to_string()),
        Err(e) => return failed(e),
    };
    match crate::service::account::open_session(&s, user_id).await {
        Ok(t) => {
            let c = auth::session_cookie_header(&t.token, crate::service::account::SESSION_TTL_S, &headers);
            ([(header::SET_COOKIE, c)], Redirect::to(&next)).into_response()
        }
        Err(e) => failed(e),
    }
}

async fn logout(State(s): State<AppState>, headers: HeaderMap, Extension(ctx): Extension<Ctx>) -> WebResult<Response> {
    crate::service::account::sign_out(&s, &ctx.p, Via::Console).await?;
    let clear = auth::session_cookie_header("", 0, &headers);
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}

/// Sets the language cookie (a year) and goes back.
async fn set_lang(headers: HeaderMap, Path(code): Path<String>, Query(q): Query<NextQuery>) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::En);
    let c = cookie_header(LANG_COOKIE, lang.code(), 365 * 86_400, false, over_tls(&headers));
    ([(header::SET_COOKIE, c)], Redirect::to(&safe_next(q.next.as_deref()))).into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    let (ctype, body): (&str, &'static [u8]) = match name.as_str() {
        "campana.css" => ("text/css; charset=utf-8", include_bytes!("../../assets/campana.css")),
        "campana.js" => ("text/javascript; charset=utf-8", include_bytes!("../../assets/campana.js")),
        "htmx.min.js" => ("text/javascript; charset=utf-8", include_bytes!("../../assets/htmx-2.0.11.min.js")),
        "htmx-LICENSE.txt" => ("text/plain; charset=utf-8", include_bytes!("../../assets/htmx-LICENSE.txt")),
        "agent.js" => ("text/javascript; charset=utf-8", include_bytes!("../../assets/agent.js")),
        "agent.css" => ("text/css; charset=utf-8", include_bytes!("../../assets/agent.css")),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    ([(header::CONTENT_TYPE, ctype), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response()
}

/// The console's routes, behind [`gate`].
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/campaigns") }))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(set_lang))
        .route("/assets/{name}", get(asset))
        .merge(account::router())
        .merge(campaigns::router())
        .merge(catalog::router())
        .merge(lists::router())
        .merge(imports::router())
        .merge(dnc::router())
        .merge(audit::router())
        .merge(agent::router())
        .merge(rules::router())
        .route_layer(axum::middleware::from_fn_with_state(state, gate))
}
