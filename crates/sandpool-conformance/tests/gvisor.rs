//! The conformance and adversarial behaviours against the gVisor (runsc) backend.
//! Needs root, runsc, the agent built (`cargo build -p sandpool-agent`) and the images
//! (built into the test data dir on first run).

sandpool_conformance::backend_tests!("gvisor" =>
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
    restored_copies_have_distinct_prng,
);
