//! Retention by age without TTL (18.16 has none): observations are partitioned by day of
//! capture time (journeys and their rows by day of their first hop), and a day is dropped,
//! on every shard, once all of it is older than the limit. So rows are kept between the
//! limit and the limit plus one day.

use super::schema::DAY_PARTITIONED;
use super::shards::Shards;

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The start of day `partition` (`YYYYMMDD`, UTC) in ns since the epoch.
fn day_start_ns(partition: &str) -> Option<i64> {
    if partition.len() != 8 || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = chrono::NaiveDate::parse_from_str(partition, "%Y%m%d").ok()?;
    let secs = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    secs.checked_mul(1_000_000_000)
}

/// Whether every row of day `partition` is older than `now_ns - max_age_ns`.
pub fn expired(partition: &str, now_ns: i64, max_age_ns: i64) -> bool {
    day_start_ns(partition).is_some_and(|start| start + DAY_NS <= now_ns - max_age_ns)
}

/// Drops the expired days of the day-partitioned tables (observations, journeys and their
/// rows) on every shard; the partitions dropped.
pub fn drop_expired(shards: &Shards, now_ns: i64, max_age_ns: i64) -> Result<usize, String> {
    let mut dropped = 0;
    for i in 0..shards.len() {
        for &table in DAY_PARTITIONED {
            let days: Vec<String> = shards.run(i, |c| async move {
                c.query(
                    "SELECT DISTINCT partition FROM system.parts WHERE database = 'hopcap' \
                     AND table = ? AND active",
                )
                .bind(table)
                .fetch_all()
                .await
            })?;
            for day in days.iter().filter(|d| expired(d, now_ns, max_age_ns)) {
                // The partition value is YYYYMMDD digits (checked by `expired`): no quoting
                // needed.
                let sql = format!("ALTER TABLE hopcap.{table} DROP PARTITION {day}");
                shards.run(i, |c| async move { c.query(&sql).execute().await })?;
                dropped += 1;
            }
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_goes_once_all_of_it_is_past_the_limit() {
        // 2026-11-26T00:00:00Z
        let day = 1_795_651_200 * 1_000_000_000i64;
        let hour = 3_600 * 1_000_000_000i64;
        assert_eq!(day_start_ns("20261126"), Some(day));
        // Kept 24 h: the day goes when its last row is 24 h old.
        assert!(!expired(
            "20261126",
            day + DAY_NS + 24 * hour - 1,
            24 * hour
        ));
        assert!(expired("20261126", day + DAY_NS + 24 * hour, 24 * hour));
        assert!(!expired("tuple()", day * 2, hour));
        assert!(!expired("2026112", day * 2, hour));
    }
}
