use tinybird::pipes::CopySchedule;

fn main() {
    // There is no hour 24: the schedule is checked when the code compiles.
    let _: CopySchedule = tinybird::cron!("0 24 * * *");
}
