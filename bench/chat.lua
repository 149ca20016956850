-- wrk script: POST /chat, a first contact each time (no session_id). Questions rotate over the intents and carry an
-- order number, so that every message is new to the answer cache and the model really classifies each one.
local questions = {
  "Bonjour, où est ma commande %d ?",
  "My parcel %d hasn't been delivered yet",
  "Je voudrais retourner l'article de la commande %d",
  "When will I get my refund for order %d?",
  "Je veux parler à un conseiller, dossier %d",
}
local counter = 0
local threads = 0
-- Each wrk thread has its own Lua state: give each an id so that their messages differ.
setup = function(thread)
  threads = threads + 1
  thread:set("id", threads)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local q = string.format(questions[counter % #questions + 1], counter * 100 + (id or 0))
  return wrk.format(nil, nil, nil, '{"message":"' .. q .. '","user_type":"customer"}')
end
