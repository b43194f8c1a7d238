"""The batch engine: one action over many deployments, in waves, with gates and a journal.

Shared by the CLI and the TUI; nothing here imports Textual. ``runner`` sends one action to many
targets with bounded parallelism; ``plan`` turns targets and settings into waves; ``journal``
records a batch on disk before each step is sent; ``executor`` runs a plan wave by wave;
``preflight`` says why a plan must not start; ``gates`` compares SLO numbers with baselines;
``lifecycle`` keeps a deck's runs and says who may resume or abort a batch. A front-end sends
a single action or checks a plan through ``console.core.actions`` (the guard, the audit).

How a UI drives it (all calls block: run them in a worker thread; callbacks arrive on that
thread or the runner's workers, one at a time, so hand them to the UI thread)::

    # one action, no waves (the action dialog's simple case)
    results = run_batch(backend, ActionSpec("restart"), targets, max_parallel=10,
                        dry_run=False, on_progress=cb, stop=event,
                        audit_context=AuditContext(profile, context, user))

    # a rollout in waves
    settings = settings_from(profile, waves="1,10%,100%", max_parallel=20, halt_after="5%",
                             bake=60, on_failure="rollback-wave")
    plan = make_plan(ActionSpec("rollout", version=3), targets, settings,
                     slo=thresholds_from(profile, p99_ratio=1.5, error_percent=1.0))
    problems = preflight.problems(backend, plan, guard)  # []: go on
    checked = executor.dry_run(backend, plan.spec, plan.targets, plan.max_parallel)
    journal = lifecycle.new_journal(plan, audit_context, "cli")
    batch = BatchExecutor(backend, journal, audit_context=..., gate=CollectorSource(collector),
                          on_event=cb)        # cb(BatchEvent): kind, message, wave, target, step
    state = batch.run()                       # from another thread: batch.halt(), batch.abort()

    # the Batch screen's list and a batch left by a killed console
    for j in list_journals(): j.replay()      # Replay: state, plan, targets[t].step/.reason
    lifecycle.check("resume" | "abort", journal, journal.replay(), guard, watched)  # or raise
    BatchExecutor(backend, Journal.open(id), ...).run()        # resume
    BatchExecutor(backend, Journal.open(id), ...).abort_now()  # roll back what it changed
    Journal.open(id).request("halt" | "abort")  # when another process runs it
"""
