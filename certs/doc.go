// Package certs owns TrustID's net certificates: issuing a compact signed
// credential to a citizen who has just proved who they are, turning it into
// a live QR presentation signed by the holder's device, and verifying that
// presentation offline (from the published issuer key list and status list)
// or online (with replay protection, revocation, the verifier's disclosure
// policy, an audit record and an optional face check at the counter).
//
// # Format choice
//
// The credential is CBOR claims (RFC 8949, core deterministic encoding,
// integer map keys) in a COSE_Sign1 (RFC 9052) signed with ES256, the design
// of the EU Digital COVID Certificate, rather than a JWS: the same claims as
// a compact JWS are about 1.9 times larger (base64url of JSON), which pushes
// the QR code several versions up. The presentation is a second COSE_Sign1,
// signed by the holder's device key, whose payload embeds the certificate as
// a byte string (the device-authentication idea of ISO/IEC 18013-5).
//
// # Certificate claims (COSE_Sign1 payload, a CBOR map)
//
//	key  name  type   meaning
//	1    hid   bstr   holder reference: HMAC-SHA-256(holder key, citizen id), first 16 bytes
//	2    nn    tstr   the holder's 网号 (network number, authn/netnumber): no plaintext identity
//	3    tpl   bstr   face template reference: SHA-256 of the reference photo, first 16 bytes
//	4    lvl   uint   assurance level (1 low, 2 substantial, 3 high)
//	5    iat   uint   issued at, Unix seconds
//	6    exp   uint   expires at, Unix seconds
//	7    sn    bstr   serial, 10 random bytes (hex in the store)
//	8    sidx  uint   index of the certificate in the issuer's status list
//	9    cnf   map    holder's device public key, COSE_Key EC2 P-256 (y compressed to a bool)
//
// The issuer key id is the protected header kid (label 4): the first 8 bytes
// of SHA-256 of the issuer public key (PKIX DER); algorithm is label 1 (-7, ES256).
//
// # Presentation (outer COSE_Sign1 payload, signed by the device key)
//
//	key  type  meaning
//	1    bstr  the certificate (tagged COSE_Sign1 bytes) as issued
//	2    uint  time of presentation, Unix seconds
//	3    bstr  nonce, 8 random bytes
//	4    bstr  optional challenge chosen by the verifier
//	5    tstr  optional purpose the holder limited it to (e.g. "check_in")
//
// The device key is generated on the holder's device (the account page:
// WebCrypto, non-extractable) and certified after a proof of possession
// (device.go); the service never holds a private holder key.
//
// The QR text is "TID1:" followed by Base45 (RFC 9285) of the zlib-compressed
// presentation: every character is in QR alphanumeric mode.
//
// # Privacy
//
// The certificate holds no plaintext identity: no name, no ID number, no
// birth date; the holder is named by the 网号 alone. A verifier gets
// plaintext attributes only from the online API, when its role's policy
// allows them for the stated purpose.
//
// Online verifiers never receive the holder reference: they get a pseudonym
// HMAC(pseudonym key, holder reference, verifier client id), so two verifiers
// cannot link their records. Offline verification cannot offer that: the
// signed certificate bytes (serial, signatures, device key) are the same in
// every presentation of one certificate, so offline verifiers that pool
// their scans could link them; only batch issuance of single-use
// certificates would avoid it, and is not done here.
package certs
