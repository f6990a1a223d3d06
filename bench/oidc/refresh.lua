-- wrk script for the refresh_token grant. Every request spends a fresh,
-- never-used refresh token: each thread starts from its share of a
-- pre-minted pool (one token per line, split by line number) and queues
-- the new refresh token each successful response returns (rotation), so a
-- small pool lasts any run, like clients that keep refreshing. A token is
-- never sent twice (a reused token is refused and revokes its family).
-- A failed response returns no token, so the pool shrinks; a thread whose
-- queue is empty stops, and done() reports it with the token counts.
-- Usage: wrk ... -s refresh.lua URL -- TOKENFILE NTHREADS BASICAUTH [NEXTFILE]
-- With NEXTFILE, done() writes the tokens still unsent (the renewed ones
-- among them) there, one per line, so that the next run against the same
-- server can go on from them (bench/compare.sh); tokens in flight when the
-- run stopped are lost.
local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads = args[1], tonumber(args[2])
   headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = "Basic " .. args[3],
   }
   queue, head, tail = {}, 1, 0
   local i = 0
   for line in io.lines(file) do
      if line ~= "" then
         if i % nthreads == tid then
            tail = tail + 1
            queue[tail] = line
         end
         i = i + 1
      end
   end
   pool, sent, renewed, out = tail, 0, 0, 0
   nextfile = args[4] or ""
end

function request()
   if head > tail then
      out = 1
      wrk.thread:stop()
      -- A request must be returned; this one fails visibly (non-2xx).
      return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=pool-exhausted")
   end
   local t = queue[head]
   queue[head] = nil
   head = head + 1
   sent = sent + 1
   return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=" .. t)
end

function response(status, headers, body)
   if status == 200 then
      local t = body:match('"refresh_token":"([^"]+)"')
      if t then
         tail = tail + 1
         queue[tail] = t
         renewed = renewed + 1
      end
   end
end

function done(summary, latency, requests)
   local p, s, r, o = 0, 0, 0, 0
   for _, t in ipairs(threads) do
      p = p + t:get("pool")
      s = s + t:get("sent")
      r = r + t:get("renewed")
      o = o + t:get("out")
   end
   io.write(string.format("refresh tokens: %d minted, %d sent (each once), %d renewed by responses; threads out of tokens: %d\n", p, s, r, o))
   local path = threads[1] and threads[1]:get("nextfile") or ""
   if path ~= "" then
      local f, left = assert(io.open(path, "w")), 0
      for _, t in ipairs(threads) do
         local q, h, tl = t:get("queue"), t:get("head"), t:get("tail")
         for i = h, tl do
            if q[i] then
               f:write(q[i], "\n")
               left = left + 1
            end
         end
      end
      f:close()
      io.write(string.format("refresh tokens left for the next run: %d\n", left))
   end
end
