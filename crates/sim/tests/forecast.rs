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

/// Absurd inputs never panic the simulation (a 1e308-second talk overflowed the simulated
/// clock): the scenario refuses them, naming the field, and durations are clamped.
#[test]
fn absurd_durations_are_refused_not_a_panic() {
    let now = "2026-03-03T14:00:00Z".parse().expect("valid");
    let base = ForecastInput {
        records_remaining: 50,
        answer_rate: 0.3,
        machine_rate: 0.0,
        busy_rate: 0.0,
        talk_mean_s: 60.0,
        wrap_mean_s: 10.0,
        agents: 2,
        mode: "progressive".into(),
        lines_per_agent: 1.0,
        abandon_rate_max: 0.03,
        campaign_zone: "America/New_York".into(),
        hours_per_day: 1.0,
        finish_by: None,
        seed: 3,
    };
    for (field, input) in [
        ("agents.talk_mean_s", ForecastInput { talk_mean_s: 1e308, ..base.clone() }),
        ("agents.talk_mean_s", ForecastInput { talk_mean_s: -5.0, ..base.clone() }),
        ("agents.talk_mean_s", ForecastInput { talk_mean_s: f64::NAN, ..base.clone() }),
        ("agents.wrap_mean_s", ForecastInput { wrap_mean_s: f64::INFINITY, ..base.clone() }),
    ] {
        let e = forecast(&input, now).expect_err("refused");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    // Clamped, not overflowing: a year at most, whatever the value.
    assert_eq!(campana_sim::model::sim_duration(1e308), chrono::Duration::days(365));
    assert_eq!(campana_sim::model::sim_duration(f64::NAN), chrono::Duration::zero());
    assert_eq!(campana_sim::model::sim_duration(-1.0), chrono::Duration::zero());
    // A raised stop flag ends the forecast with `Stopped`.
    let stop = std::sync::atomic::AtomicBool::new(true);
    let e = campana_sim::forecast_until(&ForecastInput { records_remaining: 5000, agents: 200, ..base }, now, &stop).expect_err("stopped");
    assert!(matches!(e, campana_sim::SimError::Stopped), "{e}");
}
