-- wrk script: every write carries PIPELINE (default 16) requests for the URL's path, so the server,
-- not wrk's per-request cost, sets the response rate. wrk counts each response as one request.
-- Usage: wrk -s bench/dataplane/pipeline.lua URL [-- DEPTH]
local depth = 16

init = function(args)
  if args[1] then depth = tonumber(args[1]) end
  local one = wrk.format(nil, nil)
  local all = {}
  for i = 1, depth do all[i] = one end
  batch = table.concat(all)
end

request = function()
  return batch
end
