-- Deleting one photo of a check in one transaction: its image row, the check's analysis
-- (made from it: session_analysis, angle_analysis, embeddings) and the move of the later
-- photos of the angle up one place (order_index stays 0, 1, 2, ... as registering
-- requires). A whole check is deleted with its rows by `delete from sessions` (on delete
-- cascade). The stored objects are removed by the library after the rows.
-- Service role only. Idempotent.
create or replace function public.bcd_delete_image(p_session_id uuid, p_image_type text, p_order_index integer)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  v_img public.images;
  v_analyzed boolean;
begin
  select * into v_img from public.images
   where session_id = p_session_id and image_type = p_image_type
     and order_index = case when p_order_index >= 0 then p_order_index
                            else (select max(order_index) from public.images
                                   where session_id = p_session_id and image_type = p_image_type) end
   for update;
  if not found then
    return null;
  end if;
  v_analyzed := exists (select 1 from public.session_analysis where session_id = p_session_id);
  delete from public.images where id = v_img.id;
  -- through values out of the way: the slots are unique, checked row by row
  update public.images set order_index = order_index + 1000000000
   where session_id = p_session_id and image_type = p_image_type and order_index > v_img.order_index;
  update public.images set order_index = order_index - 1000000001
   where session_id = p_session_id and image_type = p_image_type and order_index >= 1000000000;
  delete from public.angle_embeddings where session_id = p_session_id;
  delete from public.session_embeddings where session_id = p_session_id;
  delete from public.angle_analysis where session_id = p_session_id;
  delete from public.session_analysis where session_id = p_session_id;
  return jsonb_build_object('image', to_jsonb(v_img), 'analysis_deleted', v_analyzed);
end
$$;

revoke all on function public.bcd_delete_image(uuid, text, integer) from public;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    execute 'grant execute on function public.bcd_delete_image(uuid, text, integer) to service_role';
  end if;
  if exists (select 1 from pg_roles where rolname = 'anon') then
    execute 'revoke all on function public.bcd_delete_image(uuid, text, integer) from anon';
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated') then
    execute 'revoke all on function public.bcd_delete_image(uuid, text, integer) from authenticated';
  end if;
end
$$;
