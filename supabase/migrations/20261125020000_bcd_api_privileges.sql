-- Table privileges of Supabase's API roles on libbcd's tables: read only.
--
-- Supabase's default privileges grant ALL (insert, update, delete, truncate, references,
-- trigger) on new tables in `public` to anon and authenticated. Row-level security lets
-- those roles write nothing (no policy allows it), but TRUNCATE is not subject to
-- row-level security, and a table should not rely on a missing policy alone. Users read
-- their own rows (20261125000000_bcd_schema.sql); only the service role writes.
-- Idempotent: revoking what is not granted changes nothing.
do $$
declare
  r text;
begin
  foreach r in array array['anon', 'authenticated'] loop
    if exists (select 1 from pg_roles where rolname = r) then
      execute format('revoke insert, update, delete, truncate, references, trigger on public.sessions, '
                     'public.images, public.session_analysis, public.angle_analysis, public.session_embeddings, '
                     'public.angle_embeddings, public.bcd_session_overview, public.bcd_user_embeddings from %I', r);
    end if;
  end loop;
end
$$;
