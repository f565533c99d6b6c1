//! Pure planning: catalog + options in, a plan out, no I/O. `--dry-run` prints the plan; the run executes
//! exactly that plan.

mod dump;

pub use dump::{
    DumpPlan, LARGE_OBJECTS_QUERY, PlanOptions, PlannedPart, column_list, copy_out_sql, format_option, plan_dump,
};
