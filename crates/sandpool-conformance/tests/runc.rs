//! The conformance and adversarial behaviours against the runc backend.
//!
//! Skipped here, with reason: `restored_copies_have_distinct_prng` — runc cannot
//! checkpoint (CRIU does not work on our hosts), so there are no restored copies;
//! `checkpoint_is_refused` checks that runc says so instead of failing obscurely.
//! Every other behaviour runs on booted sandboxes.

sandpool_conformance::backend_tests!("runc" =>
    state_persists,
    one_plus_one,
    matplotlib_plot_is_png,
    exception_has_traceback,
    infinite_loop_times_out,
    user_output_cannot_corrupt_channel,
    shell_sandbox_runs_commands,
    host_files_are_invisible,
    network_is_loopback_only,
    sandboxes_cannot_see_each_other,
    fork_bomb_is_contained,
    memory_bomb_is_contained,
    disk_fill_is_contained,
    path_traversal_is_refused,
    cold_boot_answers,
    destroy_leaves_nothing,
    checkpoint_is_refused,
);
