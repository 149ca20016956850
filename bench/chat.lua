-- wrk script: POST /chat with a French order-tracking question (a new session each time, as first contacts are).
wrk.method = "POST"
wrk.body = '{"message":"Bonjour, où est ma commande ?","user_type":"customer"}'
wrk.headers["Content-Type"] = "application/json"
