//! The calling-hours page: the rule sets in force (the shipped `data/calling-hours.toml` or the
//! deployment's `--calling-hours` file), each with its base rule and stricter regions, and which
//! settings profiles use each set. Read-only: the rules are a file, edited and checked at start.

use super::*;
use campana_core::stored::SettingsProfile;
use campana_engine::rules::RuleView;

fn rule_cells(ctx: &Ctx, r: &RuleView) -> Vec<Markup> {
    let none = ctx.t("rules.none");
    let days: Vec<String> = r.days.iter().map(|(d, w)| format!("{d}: {}", w.join(", "))).collect();
    let or_none = |v: &[String]| if v.is_empty() { none.to_string() } else { v.join(", ") };
    vec![
        html! { (r.hours.join(", ")) },
        html! { (or_none(&days)) },
        html! { (or_none(&r.closed_weekdays)) },
        html! { (or_none(&r.holidays)) },
        html! { (r.description) },
    ]
}

/// The set's base rule ("everyone"), then each region's.
fn set_rows(ctx: &Ctx, v: &campana_engine::rules::RuleSetView) -> Vec<Vec<Markup>> {
    let row = |label: Markup, r: &RuleView| std::iter::once(label).chain(rule_cells(ctx, r)).collect();
    std::iter::once(row(html! { strong { (ctx.t("rules.everyone")) } }, &v.base))
        .chain(v.regions.iter().map(|(region, r)| row(html! { code { (region) } }, r)))
        .collect()
}

async fn page_rules(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> WebResult<Markup> {
    let rules = crate::state::calling_rules();
    let profiles = s.store.list_all::<SettingsProfile>().await?;
    Ok(page(
        &ctx,
        ctx.t("rules.title"),
        html! {
            p.help { (ctx.t("rules.intro")) }
            p { (ctx.t("rules.source")) ": " code #rules-source { (crate::state::calling_rules_source()) } }
            @for set in rules.sets.values() {
                @let v = set.view();
                @let users: Vec<String> = profiles
                    .iter()
                    .filter(|p| p.input.settings.calling_hours_rules.as_deref().unwrap_or("default") == v.name)
                    .map(|p| p.input.name.clone())
                    .collect();
                section.rule-set id=(format!("set-{}", v.name)) {
                    h2 { code { (v.name) } }
                    p { (v.base.description) }
                    p { (ctx.t("rules.profiles")) ": " @if users.is_empty() { span.muted { (ctx.t("rules.none")) } } @else { (users.join(", ")) } }
                    (table(&ctx, &format!("rules-{}", v.name), &["rules.region", "rules.hours", "rules.days", "rules.closed", "rules.holidays", "rules.note"], set_rows(&ctx, &v)))
                }
            }
        },
    ))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/calling-hours", get(page_rules))
}
