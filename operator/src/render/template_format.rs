//! Prometheus' alert-template formatting, as its Go code prints values (`%.4g`, `humanize`, `humanize1024`,
//! `humanizeDuration`, `humanizePercentage`): the promtool tests must expect the annotations exactly as Prometheus
//! renders them.

use std::collections::BTreeMap;

/// Expands the alert templates the operator writes: `{{ $labels.x }}` and `{{ $value }}` with Prometheus' formatting
/// functions, as Prometheus renders them.
pub fn expand(template: &str, labels: &BTreeMap<String, String>, value: f64) -> String {
    let mut out = template.to_owned();
    for (k, v) in labels {
        out = out.replace(&format!("{{{{ $labels.{k} }}}}"), v);
    }
    out.replace(
        "{{ $value | humanizePercentage }}",
        &format!("{}%", go_g4(value * 100.0)),
    )
    .replace("{{ $value | humanizeDuration }}", &humanize_duration(value))
    .replace("{{ $value | humanize1024 }}", &humanize_1024(value))
    .replace("{{ $value | humanize }}", &humanize(value))
    .replace("{{ $value }}", &go_float(value))
}

/// Go's `%.4g`.
pub fn go_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if !(-4..4).contains(&exp) {
        let mantissa = v / 10f64.powi(exp);
        let m = trim(format!("{mantissa:.3}"));
        return format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = (3 - exp).max(0) as usize;
    trim(format!("{v:.decimals$}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`, as `{{ $value }}` prints.
fn go_float(v: f64) -> String {
    format!("{v}")
}

fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g4(v);
    }
    let (mut v, mut prefix) = (v, "");
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_g4(v))
}

fn humanize_1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g4(v);
    }
    let (mut v, mut prefix) = (v, "");
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_g4(v))
}

fn humanize_duration(v: f64) -> String {
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let s = v.abs() as i64;
        let (days, hours, mins, secs) = (s / 86400, (s / 3600) % 24, (s / 60) % 60, s % 60);
        if days != 0 {
            return format!("{days}d {hours}h {mins}m {secs}s");
        }
        if hours != 0 {
            return format!("{hours}h {mins}m {secs}s");
        }
        if mins != 0 {
            return format!("{mins}m {secs}s");
        }
        return format!("{}s", go_g4(v));
    }
    let (mut v, mut prefix) = (v, "");
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g4(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_prometheus_templates() {
        assert_eq!(go_g4(0.2), "0.2");
        assert_eq!(go_g4(4.85), "4.85");
        assert_eq!(go_g4(1000.0), "1000");
        assert_eq!(go_g4(16.666666), "16.67");
        assert_eq!(humanize(0.2), "200m");
        assert_eq!(humanize(1.0 / 60.0), "16.67m");
        assert_eq!(humanize_1024(1048576000.0), "1000Mi");
        assert_eq!(humanize_duration(4.85), "4.85s");
        assert_eq!(humanize_duration(0.00475), "4.75ms");
        assert_eq!(humanize_duration(90.0), "1m 30s");
        assert_eq!(format!("{}%", go_g4(0.2 * 100.0)), "20%");
    }
}
