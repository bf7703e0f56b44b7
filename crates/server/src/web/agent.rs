//! The agent desktop (`/agent`): dialer login and logout, ready / not ready with a pause code,
//! the preview offer with its countdown, the connected call (contact, campaign notes, notes of
//! earlier calls, script), hang-up, manager tags, the disposition with notes, the callback
//! picker with the contact's local time, do-not-call, and the wrap-up countdown.
//!
//! The page is a server-rendered skeleton with every label from the catalogue; `assets/agent.js`
//! fills it from `GET /api/v1/agent/state`, refetched on each notice of
//! `GET /api/v1/agent/events` (server-sent events), and acts through the agent API with the
//! session cookie and `X-CSRF-Token`. The gate requires what `/api/v1/agent` requires: the
//! `agent` privilege.

use super::*;

/// Pause codes offered in the list (translated as `desk.pause.<code>`); "other" takes free
/// text (1 to 40 characters, as the API checks).
pub const PAUSE_CODES: [&str; 5] = ["break", "lunch", "training", "meeting", "paperwork"];

/// The most characters of a typed pause code (the API's limit).
pub const PAUSE_CODE_MAX_CHARS: usize = 40;

async fn desk(Extension(ctx): Extension<Ctx>) -> Markup {
    // The strings the script writes itself (state line, countdowns, messages).
    let strings: std::collections::BTreeMap<&str, &str> = ctx.lang.with_prefix("desk.js.");
    let strings = serde_json::to_string(&strings).unwrap_or_else(|_| "{}".into());
    let body = html! {
        link rel="stylesheet" href="/assets/agent.css";
        div #desk data-csrf=(ctx.csrf) data-lang=(ctx.lang.code()) data-pause-max=(PAUSE_CODE_MAX_CHARS) {
            script type="application/json" #desk-strings { (maud::PreEscaped(strings.replace("</", "<\\/"))) }
            section.card #dialer {
                p #state-line data-state="unknown" { span #state { (ctx.t("common.loading")) } " " span.hint #state-since {} }
                p.error #desk-error hidden {}
                div.toolbar {
                    button type="button" #dialer-login hidden { (ctx.t("desk.login")) }
                    button.primary type="button" #ready hidden { (ctx.t("desk.ready")) }
                    span #pause hidden {
                        label for="pause-code" { (ctx.t("desk.pause_code")) }
                        select #pause-code {
                            @for code in PAUSE_CODES {
                                option value=(code) { (ctx.t(&format!("desk.pause.{code}"))) }
                            }
                            option value="" { (ctx.t("desk.pause_other")) }
                        }
                        input type="text" #pause-other maxlength=(PAUSE_CODE_MAX_CHARS) placeholder=(ctx.t("desk.pause_text")) hidden;
                        button type="button" #not-ready { (ctx.t("desk.not_ready")) }
                    }
                    button type="button" #dialer-logout hidden { (ctx.t("desk.logout")) }
                }
            }
            section.card #offer hidden {
                h2 { (ctx.t("desk.offer")) " " span.countdown #offer-countdown {} }
                div.toolbar {
                    button.primary type="button" #preview-call { (ctx.t("desk.call")) }
                    button type="button" #preview-skip { (ctx.t("desk.skip")) }
                }
            }
            div.desk-columns #call hidden {
                div {
                    section.card #contact {
                        h2 { (ctx.t("desk.contact")) " " span #campaign-name.hint {} }
                        dl.details {
                            dt { (ctx.t("desk.name")) } dd #contact-name {}
                            dt { (ctx.t("desk.number")) } dd #contact-phone {}
                            dt { (ctx.t("desk.phone_type")) } dd #contact-phone-type {}
                            dt { (ctx.t("desk.local_time")) } dd #contact-local-time {}
                            dt { (ctx.t("desk.external_id")) } dd #contact-external-id {}
                            dt { (ctx.t("desk.postal_code")) } dd #contact-postal-code {}
                        }
                        h2 { (ctx.t("desk.custom")) }
                        dl.details #contact-custom {}
                    }
                    section.card #notes-panel {
                        h2 { (ctx.t("desk.campaign_notes")) }
                        p.pre #campaign-notes {}
                        h2 { (ctx.t("desk.history")) }
                        p.empty #history-empty { (ctx.t("desk.history_none")) }
                        ul #history {}
                    }
                }
                div {
                    section.card #script-panel {
                        h2 { (ctx.t("desk.script")) }
                        div.pre #script {}
                    }
                    section.card #call-actions {
                        div.toolbar {
                            button.danger type="button" #hang-up hidden { (ctx.t("desk.hang_up")) }
                            span.countdown #wrap-countdown hidden {}
                        }
                        h2 { (ctx.t("desk.tags")) }
                        div.toolbar #tags {}
                        form #dispose {
                            label for="disposition" { (ctx.t("desk.disposition")) }
                            select #disposition required {
                                option value="" { (ctx.t("desk.choose")) }
                            }
                            label for="notes" { (ctx.t("desk.notes")) }
                            textarea #notes rows="3" maxlength="4000" {}
                            fieldset #callback hidden {
                                legend { (ctx.t("desk.callback")) }
                                label for="callback-at" { (ctx.t("desk.callback_at")) }
                                input type="datetime-local" #callback-at;
                                p.hint #callback-contact-time {}
                                label.check { input type="radio" name="callback-kind" #callback-personal value="personal" checked; (ctx.t("desk.callback_personal")) }
                                label.check { input type="radio" name="callback-kind" #callback-campaign value="campaign"; (ctx.t("desk.callback_campaign")) }
                            }
                            div.actions {
                                button.primary type="submit" #dispose-submit { (ctx.t("desk.submit")) }
                                " "
                                button.danger type="button" #mark-dnc { (ctx.t("desk.mark_dnc")) }
                            }
                        }
                    }
                }
            }
        }
        script src="/assets/agent.js" defer {}
    };
    page(&ctx, ctx.t("desk.title"), body)
}

pub fn router() -> Router<AppState> {
    Router::new().route("/agent", get(desk))
}
