//! Forecast by simulation.

use campana_sim::{forecast, ForecastInput};

#[test]
fn forecast_projects_finish_and_team() {
    let now = "2026-03-03T14:00:00Z".parse().expect("valid");
    let input = ForecastInput {
        records_remaining: 400,
        answer_rate: 0.3,
        machine_rate: 0.0,
        busy_rate: 0.05,
        talk_mean_s: 60.0,
        wrap_mean_s: 10.0,
        agents: 2,
        mode: "progressive".into(),
        lines_per_agent: 1.0,
        abandon_rate_max: 0.03,
        campaign_zone: "America/New_York".into(),
        hours_per_day: 2.0,
        finish_by: Some("2026-03-08T16:00:00Z".parse().expect("valid")),
        seed: 3,
    };
    let f = forecast(&input, now).expect("forecast");
    assert!(f.records_completed_per_day > 0.0, "{f:?}");
    assert!(f.finishes_at.is_some_and(|t| t > now), "{f:?}");
    let n = f.agents_needed_by_deadline.expect("some team finishes by the deadline");
    assert!(n >= 2, "{f:?}");
    assert!(f.message.contains("finishes at"), "{}", f.message);
    let again = forecast(&input, now).expect("forecast");
    assert_eq!(f, again, "deterministic");
}
