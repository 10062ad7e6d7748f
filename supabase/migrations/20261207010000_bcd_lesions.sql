-- Lesions: every spot an analysis found on each angle, with the id that is carried from
-- check to check (bcd/lesion.h). They are stored with the analysis, in
-- session_analysis.details (per_angle[].lesions, as bcd_lesion_result_json() writes them),
-- in this store as in the local one; this view lists them one row per lesion per check,
-- so a lesion's history is a query on (user_id, angle_type, lesion_id).
-- security_invoker: the caller's row-level security on sessions and session_analysis
-- applies (a user sees the lesions of their own checks only). Idempotent.
create or replace view public.bcd_lesions with (security_invoker = true) as
  select a.session_id, s.user_id, s.created_at as session_created_at,
         a.details ->> 'previous_session_id' as previous_session_id,
         pa ->> 'angle_type' as angle_type,
         pa -> 'lesions' ->> 'status' as angle_status,
         (l ->> 'id')::bigint as lesion_id,
         l ->> 'state' as state,
         (l -> 'center' ->> 0)::double precision as center_x,
         (l -> 'center' ->> 1)::double precision as center_y,
         (l -> 'previous_center' ->> 0)::double precision as previous_center_x,
         (l -> 'previous_center' ->> 1)::double precision as previous_center_y,
         (l ->> 'diameter_px')::double precision as diameter_px,
         (l ->> 'diameter_mm')::double precision as diameter_mm,
         coalesce((l ->> 'changed')::boolean, false) as changed,
         (l ->> 'score')::double precision as score,
         l -> 'change' as change
  from public.session_analysis a
  join public.sessions s on s.id = a.session_id
  cross join lateral jsonb_array_elements(
    case when jsonb_typeof(a.details -> 'per_angle') = 'array' then a.details -> 'per_angle' else '[]'::jsonb end) pa
  cross join lateral jsonb_array_elements(
    case when jsonb_typeof(pa -> 'lesions' -> 'lesions') = 'array' then pa -> 'lesions' -> 'lesions'
         else '[]'::jsonb end) l;

do $$
declare
  r text;
begin
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    execute 'grant select on public.bcd_lesions to authenticated';
  end if;
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    execute 'grant select on public.bcd_lesions to service_role';
  end if;
  -- read only for the API roles (see 20261125020000_bcd_api_privileges.sql)
  foreach r in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('revoke insert, update, delete, truncate, references, trigger on public.bcd_lesions from %I', r);
    end if;
  end loop;
end
$$;
