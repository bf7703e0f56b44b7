//! The signed-in user's account page: their password, API tokens and browser sessions (list,
//! create, revoke, end), over the same service calls as `/api/v1/auth/...`. Every form carries
//! the CSRF token (checked by [`super::gate`]); every change is audited by the service.

use super::*;
use crate::service::account;
use campana_core::FieldError;
use campana_store::auth::{IssuedToken, TokenInfo};

/// What the page shows besides the lists: a new token's secret (once), the field errors of a
/// refused form, and which form they belong to.
#[derive(Default)]
struct Outcome<'a> {
    issued: Option<&'a IssuedToken>,
    form: Option<&'static str>,
    errors: &'a [FieldError],
    notice: Option<&'static str>,
}

fn when(t: &Option<chrono::DateTime<chrono::Utc>>, ctx: &Ctx, none: &str) -> String {
    t.as_ref().map(fmt_time).unwrap_or_else(|| ctx.t(none).to_string())
}

async fn render(s: &AppState, ctx: &Ctx, o: Outcome<'_>) -> WebResult<Markup> {
    let tokens: Vec<TokenInfo> = account::list_tokens(s, &ctx.p).await?;
    let sessions: Vec<TokenInfo> = account::list_sessions(s, &ctx.p).await?;
    let err = |form: &str, field: &str| -> Option<String> {
        (o.form == Some(form)).then(|| o.errors.iter().find(|e| e.field == field).map(|e| e.reason.clone())).flatten()
    };
    let token_rows = tokens
        .iter()
        .map(|t| {
            vec![
                html! { (t.name) },
                html! { (fmt_time(&t.created_at)) },
                html! { (when(&t.expires_at, ctx, "account.never")) },
                html! { (when(&t.last_used_at, ctx, "account.never_used")) },
                html! {
                    form.inline method="post" action=(format!("/account/tokens/{}/revoke", t.id)) data-confirm=(ctx.t("account.confirm_revoke")) {
                        (ctx.csrf_field())
                        button.danger type="submit" id=(format!("revoke-token-{}", t.id)) { (ctx.t("account.revoke")) }
                    }
                },
            ]
        })
        .collect();
    let session_rows = sessions
        .iter()
        .map(|t| {
            let current = t.id == ctx.p.token_id;
            vec![
                html! { (fmt_time(&t.created_at)) },
                html! { (when(&t.last_used_at, ctx, "account.never_used")) },
                html! { (when(&t.expires_at, ctx, "account.never")) },
                html! {
                    @if current { strong.current-session { (ctx.t("account.this_session")) } }
                    @else {
                        form.inline method="post" action=(format!("/account/sessions/{}/end", t.id)) {
                            (ctx.csrf_field())
                            button.danger type="submit" id=(format!("end-session-{}", t.id)) { (ctx.t("account.end_session")) }
                        }
                    }
                },
            ]
        })
        .collect();
    let u = &ctx.p.user;
    Ok(page(
        ctx,
        ctx.t("account.title"),
        html! {
            dl.details {
                dt { (ctx.t("account.username")) } dd #account-username { (u.input.username) }
                dt { (ctx.t("common.name")) } dd { (u.input.display_name) }
            }
            @if let Some(n) = o.notice { div.notice role="status" id="account-notice" { p { (ctx.t(n)) } } }
            @if !o.errors.is_empty() { div.errors role="alert" id="form-errors" { p { (ctx.t("form.fix_errors")) } } }
            form.edit method="post" action="/account/password" id="password-form" {
                h2 { (ctx.t("account.password")) }
                p.muted { (ctx.t("account.password_help")) }
                (ctx.csrf_field())
                label { (ctx.t("account.current_password")) input type="password" name="current_password" id="current-password" autocomplete="current-password" required; }
                @if let Some(e) = err("password", "current_password") { p.field-error { (e) } }
                label { (ctx.t("account.new_password")) input type="password" name="new_password" id="new-password" autocomplete="new-password" minlength="10" required; }
                @if let Some(e) = err("password", "new_password") { p.field-error { (e) } }
                div.actions { button type="submit" id="change-password" { (ctx.t("account.change_password")) } }
            }
            h2 { (ctx.t("account.tokens")) }
            @if let Some(t) = o.issued {
                div.notice role="status" id="new-token" {
                    p { (ctx.t("account.token_once")) }
                    pre.secret id="new-token-secret" { (t.token) }
                }
            }
            (table(ctx, "tokens", &["account.token_name", "account.created", "account.expires", "account.last_used", "common.actions"], token_rows))
            form.edit method="post" action="/account/tokens" id="token-form" {
                h3 { (ctx.t("account.new_token")) }
                (ctx.csrf_field())
                label { (ctx.t("account.token_name")) input type="text" name="name" id="token-name" maxlength="100" required; }
                @if let Some(e) = err("token", "name") { p.field-error { (e) } }
                label { (ctx.t("account.ttl_days")) input type="number" name="ttl_days" id="token-ttl" min="1" max=(account::MAX_TOKEN_TTL_DAYS); }
                @if let Some(e) = err("token", "ttl_days") { p.field-error { (e) } }
                div.actions { button type="submit" id="create-token" { (ctx.t("account.create_token")) } }
            }
            h2 { (ctx.t("account.sessions")) }
            (table(ctx, "sessions", &["account.created", "account.last_used", "account.expires", "common.actions"], session_rows))
        },
    ))
}

#[derive(serde::Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn show(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Query(q): Query<DoneQuery>) -> WebResult<Markup> {
    let notice = match q.done.as_deref() {
        Some("password") => Some("account.password_changed"),
        Some("revoked") => Some("account.token_revoked"),
        Some("ended") => Some("account.session_ended"),
        _ => None,
    };
    render(&s, &ctx, Outcome { notice, ..Default::default() }).await
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// A refused form is shown again with its field errors (422); any other error is an error page.
async fn refused(s: &AppState, ctx: &Ctx, form: &'static str, e: ServiceError) -> WebResult<Response> {
    match e {
        ServiceError::Invalid(errors) => {
            let body = render(s, ctx, Outcome { form: Some(form), errors: &errors, ..Default::default() }).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
        other => Err(other.into()),
    }
}

async fn change_password(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<PasswordForm>) -> WebResult<Response> {
    match account::change_password(&s, &ctx.p, Via::Console, &f.current_password, &f.new_password).await {
        Ok(()) => Ok(see_other("/account?done=password")),
        Err(e) => refused(&s, &ctx, "password", e).await,
    }
}

#[derive(serde::Deserialize)]
struct TokenForm {
    name: String,
    #[serde(default)]
    ttl_days: String,
}

async fn create_token(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<TokenForm>) -> WebResult<Response> {
    let ttl_days = match f.ttl_days.trim() {
        "" => None,
        d => match d.parse::<u32>() {
            Ok(d) => Some(d),
            Err(_) => {
                let e = ServiceError::field("ttl_days", format!("'{d}' is not a number of days"));
                return refused(&s, &ctx, "token", e).await;
            }
        },
    };
    match account::create_token(&s, &ctx.p, Via::Console, &f.name, ttl_days).await {
        // The secret is shown once, in this answer.
        Ok(t) => Ok(render(&s, &ctx, Outcome { issued: Some(&t), ..Default::default() }).await?.into_response()),
        Err(e) => refused(&s, &ctx, "token", e).await,
    }
}

async fn revoke_token(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Response> {
    account::revoke_token(&s, &ctx.p, Via::Console, id).await?;
    Ok(see_other("/account?done=revoked"))
}

async fn end_session(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Response> {
    account::end_session(&s, &ctx.p, Via::Console, id).await?;
    Ok(see_other("/account?done=ended"))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route("/account/sessions/{id}/end", post(end_session))
}
