-- libbcd analysis job queue for a Supabase project (PostgreSQL 15+): asynchronous analysis
-- (`bcd-cli analyze SESSION --async`) run by any number of workers (`bcd-cli worker`) on
-- any number of machines, sharing this one queue. Applies after 20261125000000_bcd_schema.sql.
--
-- A job is claimed under a lease: the claim takes a row with FOR UPDATE SKIP LOCKED, so
-- concurrent workers never wait on nor take the same job; the worker renews the lease
-- while it runs (heartbeat) and only the lease holder may finish the job. A job whose
-- worker died is claimed again once its lease expired; attempts are bounded (default 3),
-- retries wait with the backoff the worker asks for, and after the last attempt the job is
-- failed with its error kept. At most one queued-or-running job per session.
--
-- The functions mirror the job operations of libbcd's store interface (lib/store/store.h,
-- "Analysis job queue"); the local SQLite store implements the same semantics. Every
-- function answers jobs in one JSON shape (public.bcd_job_json), timestamps as UTC text
-- "YYYY-MM-DDTHH:MM:SS.ffffffZ":
--   {"id", "session_id", "user_id", "model", "status", "attempts", "max_attempts",
--    "worker_id", "lease_expires_at", "run_after", "error_code", "error",
--    "created_at", "updated_at", "started_at", "finished_at"}
-- Errors (PostgREST turns SQLSTATE PTnnn into HTTP status nnn):
--   PT400 invalid argument, PT404 unknown session or job, PT409 "job_lease_lost" (the
--   caller does not hold the job: another worker took it over, or it is finished).

-- ---------------------------------------------------------------------------------------
-- Table
-- ---------------------------------------------------------------------------------------
create table if not exists public.bcd_jobs (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions (id) on delete cascade,
  user_id uuid not null,
  model text,
  status text not null default 'queued',
  attempts integer not null default 0,
  max_attempts integer not null default 3,
  worker_id text,
  lease_expires_at timestamptz,
  run_after timestamptz not null default clock_timestamp(),
  error_code text,
  error text,
  created_at timestamptz not null default clock_timestamp(),
  updated_at timestamptz not null default clock_timestamp(),
  started_at timestamptz,
  finished_at timestamptz,
  seq bigint generated always as identity,
  constraint bcd_jobs_status_check check (status in ('queued', 'running', 'done', 'failed')),
  constraint bcd_jobs_attempts_check check (attempts >= 0 and max_attempts between 1 and 100),
  constraint bcd_jobs_running_check
    check (status <> 'running' or (worker_id is not null and lease_expires_at is not null))
);

-- one queued-or-running job per session (enqueue is idempotent on it)
create unique index if not exists bcd_jobs_one_active_per_session on public.bcd_jobs (session_id)
  where status in ('queued', 'running');
-- what a claim scans: the pending jobs only, oldest first
create index if not exists bcd_jobs_pending on public.bcd_jobs (seq) where status in ('queued', 'running');
create index if not exists bcd_jobs_by_session on public.bcd_jobs (session_id, seq);
create index if not exists bcd_jobs_by_user on public.bcd_jobs (user_id, seq);

-- ---------------------------------------------------------------------------------------
-- JSON of a job (the one shape every function answers)
-- ---------------------------------------------------------------------------------------
create or replace function public.bcd_ts(p_t timestamptz) returns text
language sql stable set search_path = '' as $$
  select to_char(p_t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

create or replace function public.bcd_job_json(j public.bcd_jobs) returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'id', j.id, 'session_id', j.session_id, 'user_id', j.user_id, 'model', j.model,
    'status', j.status, 'attempts', j.attempts, 'max_attempts', j.max_attempts,
    'worker_id', j.worker_id,
    'lease_expires_at', case when j.status = 'running' then public.bcd_ts(j.lease_expires_at) end,
    'run_after', public.bcd_ts(j.run_after), 'error_code', j.error_code, 'error', j.error,
    'created_at', public.bcd_ts(j.created_at), 'updated_at', public.bcd_ts(j.updated_at),
    'started_at', public.bcd_ts(j.started_at), 'finished_at', public.bcd_ts(j.finished_at))
$$;

-- ---------------------------------------------------------------------------------------
-- Enqueue: {"job": job, "created": bool}
-- ---------------------------------------------------------------------------------------
-- Queue the analysis of p_session_id for p_user_id (the session's owner). While a job of
-- the session is queued or running, that job is returned ("created": false); a done or
-- failed job does not count (a new one is a re-analysis). p_model: the model spec the
-- worker should use, null for the worker's default.
create or replace function public.bcd_enqueue_job(p_session_id uuid, p_user_id uuid, p_model text default null,
                                                  p_max_attempts integer default 3)
returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
  v_owner uuid;
  v_job public.bcd_jobs;
begin
  if p_max_attempts is null or p_max_attempts < 1 or p_max_attempts > 100 then
    raise sqlstate 'PT400' using message = 'max_attempts must be from 1 to 100';
  end if;
  if p_model is not null and length(p_model) >= 4096 then
    raise sqlstate 'PT400' using message = 'the model spec is too long';
  end if;
  select s.user_id into v_owner from public.sessions s where s.id = p_session_id;
  if not found or v_owner is distinct from p_user_id then
    raise sqlstate 'PT404' using message = 'session not found', detail = p_session_id::text;
  end if;
  loop
    select * into v_job from public.bcd_jobs j
    where j.session_id = p_session_id and j.status in ('queued', 'running')
    order by j.seq desc limit 1;
    if found then
      return jsonb_build_object('job', public.bcd_job_json(v_job), 'created', false);
    end if;
    begin
      insert into public.bcd_jobs (session_id, user_id, model, max_attempts)
      values (p_session_id, p_user_id, nullif(p_model, ''), p_max_attempts)
      returning * into v_job;
      return jsonb_build_object('job', public.bcd_job_json(v_job), 'created', true);
    exception when unique_violation then
      -- a concurrent enqueue of the same session won the race: answer its job (loop)
    end;
  end loop;
end
$$;

-- ---------------------------------------------------------------------------------------
-- Claim: {"job": job | null, "wait_ms": n}
-- ---------------------------------------------------------------------------------------
-- Take the oldest job that is queued with run_after in the past, or running with an
-- expired lease, for p_worker_id with a lease of p_lease_ms milliseconds, counting the
-- attempt. Rows that another worker is claiming right now are skipped (SKIP LOCKED), never
-- waited for. A running job whose lease expired on its last allowed attempt is failed
-- ("lease_expired") instead. Nothing claimable: "job" null and "wait_ms" the time until
-- the next queued job may run or the next lease expires (0 if already), -1 when no job is
-- queued or running at all.
create or replace function public.bcd_claim_job(p_worker_id text, p_lease_ms bigint)
returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
  v_now timestamptz := clock_timestamp();
  v_old record;
  v_job public.bcd_jobs;
  v_next timestamptz;
begin
  if p_worker_id is null or length(p_worker_id) = 0 or length(p_worker_id) >= 96 then
    raise sqlstate 'PT400' using message = 'invalid worker id';
  end if;
  if p_lease_ms is null or p_lease_ms <= 0 or p_lease_ms > 86400000 then
    raise sqlstate 'PT400' using message = 'the lease must be from 1 ms to one day';
  end if;

  -- a worker that died (or hung) on the last allowed attempt: the job has failed
  update public.bcd_jobs j
  set status = 'failed', error_code = 'lease_expired',
      error = format('the worker %s stopped renewing its lease on attempt %s of %s (crashed or hung)',
                     coalesce(j.worker_id, '?'), j.attempts, j.max_attempts),
      lease_expires_at = null, finished_at = v_now, updated_at = v_now
  where j.id in (select x.id from public.bcd_jobs x
                 where x.status = 'running' and x.lease_expires_at <= v_now and x.attempts >= x.max_attempts
                 for update skip locked);

  select x.id, x.status, x.worker_id into v_old
  from public.bcd_jobs x
  where x.status in ('queued', 'running')
    and ((x.status = 'queued' and x.run_after <= v_now)
         or (x.status = 'running' and x.lease_expires_at <= v_now and x.attempts < x.max_attempts))
  order by x.seq
  limit 1
  for update skip locked;

  if not found then
    select min(case when x.status = 'queued' then x.run_after else x.lease_expires_at end) into v_next
    from public.bcd_jobs x where x.status in ('queued', 'running');
    return jsonb_build_object('job', null, 'wait_ms',
      case when v_next is null then -1
           else greatest(0, ceil(extract(epoch from (v_next - v_now)) * 1000))::bigint end);
  end if;

  update public.bcd_jobs j
  set status = 'running', worker_id = p_worker_id, attempts = j.attempts + 1,
      lease_expires_at = v_now + p_lease_ms * interval '1 millisecond',
      started_at = v_now, updated_at = v_now,
      error_code = case when v_old.status = 'running' then 'lease_expired' else j.error_code end,
      error = case when v_old.status = 'running'
                   then format('the lease of worker %s expired (crashed or hung); taken over by %s',
                               v_old.worker_id, p_worker_id)
                   else j.error end
  where j.id = v_old.id
  returning * into v_job;
  return jsonb_build_object('job', public.bcd_job_json(v_job), 'wait_ms', 0);
end
$$;

-- The job p_job_id locked for its holder p_worker_id: PT404 if unknown, PT409 if not held.
create or replace function public.bcd_held_job(p_job_id uuid, p_worker_id text)
returns public.bcd_jobs
language plpgsql volatile security invoker set search_path = '' as $$
declare
  v_job public.bcd_jobs;
begin
  select * into v_job from public.bcd_jobs j where j.id = p_job_id for update;
  if not found then
    raise sqlstate 'PT404' using message = 'job not found', detail = p_job_id::text;
  end if;
  if v_job.status <> 'running' or v_job.worker_id is distinct from p_worker_id then
    raise sqlstate 'PT409' using message = 'job_lease_lost',
      detail = format('worker %s no longer holds job %s (it is %s)', p_worker_id, p_job_id, v_job.status),
      hint = public.bcd_job_json(v_job)::text;
  end if;
  return v_job;
end
$$;

-- ---------------------------------------------------------------------------------------
-- Heartbeat: job
-- ---------------------------------------------------------------------------------------
-- Renew the lease of a job the caller holds: it ends p_lease_ms from now (also after it
-- expired, as long as no other worker claimed the job meanwhile).
create or replace function public.bcd_heartbeat_job(p_job_id uuid, p_worker_id text, p_lease_ms bigint)
returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
  v_now timestamptz := clock_timestamp();
  v_job public.bcd_jobs;
begin
  if p_lease_ms is null or p_lease_ms <= 0 or p_lease_ms > 86400000 then
    raise sqlstate 'PT400' using message = 'the lease must be from 1 ms to one day';
  end if;
  perform public.bcd_held_job(p_job_id, p_worker_id);
  update public.bcd_jobs j
  set lease_expires_at = v_now + p_lease_ms * interval '1 millisecond', updated_at = v_now
  where j.id = p_job_id
  returning * into v_job;
  return public.bcd_job_json(v_job);
end
$$;

-- ---------------------------------------------------------------------------------------
-- Finish: job
-- ---------------------------------------------------------------------------------------
-- Record the outcome of a job the caller holds. p_outcome 'done': done, error cleared.
-- p_outcome 'failed': the error is kept; with p_retry_ms >= 0 and attempts left the job
-- is queued again, claimable p_retry_ms from now (the worker's backoff); otherwise
-- (p_retry_ms null or < 0: a permanent error; or the last attempt) it is failed for good.
create or replace function public.bcd_finish_job(p_job_id uuid, p_worker_id text, p_outcome text,
                                                 p_error_code text default null, p_error text default null,
                                                 p_retry_ms bigint default null)
returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
  v_now timestamptz := clock_timestamp();
  v_job public.bcd_jobs;
begin
  if p_outcome is null or p_outcome not in ('done', 'failed') then
    raise sqlstate 'PT400' using message = 'p_outcome must be done or failed';
  end if;
  v_job := public.bcd_held_job(p_job_id, p_worker_id);
  if p_outcome = 'done' then
    update public.bcd_jobs j
    set status = 'done', lease_expires_at = null, error_code = null, error = null,
        finished_at = v_now, updated_at = v_now
    where j.id = p_job_id returning * into v_job;
  elsif p_retry_ms is not null and p_retry_ms >= 0 and v_job.attempts < v_job.max_attempts then
    update public.bcd_jobs j
    set status = 'queued', lease_expires_at = null,
        run_after = v_now + least(p_retry_ms, 86400000) * interval '1 millisecond',
        error_code = coalesce(nullif(p_error_code, ''), 'error'),
        error = left(coalesce(nullif(p_error, ''), 'unknown error'), 1023), updated_at = v_now
    where j.id = p_job_id returning * into v_job;
  else
    update public.bcd_jobs j
    set status = 'failed', lease_expires_at = null,
        error_code = coalesce(nullif(p_error_code, ''), 'error'),
        error = left(coalesce(nullif(p_error, ''), 'unknown error'), 1023),
        finished_at = v_now, updated_at = v_now
    where j.id = p_job_id returning * into v_job;
  end if;
  return public.bcd_job_json(v_job);
end
$$;

-- ---------------------------------------------------------------------------------------
-- Read: job | null
-- ---------------------------------------------------------------------------------------
-- One job by id, or the newest job of a session (give one of the two); null if none.
create or replace function public.bcd_get_job(p_job_id uuid default null, p_session_id uuid default null)
returns jsonb
language sql stable security invoker set search_path = '' as $$
  select public.bcd_job_json(j)
  from public.bcd_jobs j
  where (p_job_id is not null and j.id = p_job_id)
     or (p_job_id is null and p_session_id is not null and j.session_id = p_session_id)
  order by j.seq desc
  limit 1
$$;

-- ---------------------------------------------------------------------------------------
-- Row-level security and grants: users read their own jobs; only the service role (the
-- libbcd workers and service) writes, through the functions above.
-- ---------------------------------------------------------------------------------------
alter table public.bcd_jobs enable row level security;
drop policy if exists bcd_jobs_read_own on public.bcd_jobs;
create policy bcd_jobs_read_own on public.bcd_jobs for select using (user_id = (select auth.uid()));

revoke all on function public.bcd_enqueue_job(uuid, uuid, text, integer) from public;
revoke all on function public.bcd_claim_job(text, bigint) from public;
revoke all on function public.bcd_held_job(uuid, text) from public;
revoke all on function public.bcd_heartbeat_job(uuid, text, bigint) from public;
revoke all on function public.bcd_finish_job(uuid, text, text, text, text, bigint) from public;
revoke all on function public.bcd_get_job(uuid, uuid) from public;
do $$
declare
  r text;
begin
  -- Supabase's default privileges grant EXECUTE on new functions to its API roles: only
  -- the service role may change the queue (the functions also run under row-level
  -- security, which lets users write nothing, but say it plainly)
  foreach r in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('revoke all on function public.bcd_enqueue_job(uuid, uuid, text, integer), '
                     'public.bcd_claim_job(text, bigint), public.bcd_held_job(uuid, text), '
                     'public.bcd_heartbeat_job(uuid, text, bigint), '
                     'public.bcd_finish_job(uuid, text, text, text, text, bigint), '
                     'public.bcd_get_job(uuid, uuid) from %I', r);
      execute format('revoke insert, update, delete, truncate on public.bcd_jobs from %I', r);
    end if;
  end loop;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    execute 'grant select, insert, update, delete on public.bcd_jobs to service_role';
    execute 'grant execute on function public.bcd_enqueue_job(uuid, uuid, text, integer), '
            'public.bcd_claim_job(text, bigint), public.bcd_held_job(uuid, text), '
            'public.bcd_heartbeat_job(uuid, text, bigint), '
            'public.bcd_finish_job(uuid, text, text, text, text, bigint), '
            'public.bcd_get_job(uuid, uuid) to service_role';
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    -- reading runs under the caller's row-level security (security invoker)
    execute 'grant select on public.bcd_jobs to authenticated';
    execute 'grant execute on function public.bcd_get_job(uuid, uuid) to authenticated';
  end if;
end
$$;
