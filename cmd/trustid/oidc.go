package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/trustid/trustid/oidc"
)

// listFlag is a comma-separated (or repeated) string list flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

const clientUsage = `usage: trustid client <create|update|rotate-secret|delete|list> [flags]

  create         register a client; prints it with its secret (shown once)
  update -id ID  change the settings given by flags (others are kept)
  rotate-secret -id ID [-grace 24h]  new secret; the old one works for -grace
  delete -id ID
  list`

// runClient administers OAuth clients in the configured store.
func runClient(ctx context.Context, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(os.Stdout, clientUsage)
		return flag.ErrHelp
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(os.Stderr, clientUsage)
		return errors.New("client: a subcommand is required")
	}
	sub := args[0]
	fs := flag.NewFlagSet("client "+sub, flag.ContinueOnError)
	cfgPath := configFlag(fs)
	id := fs.String("id", "", "client id (create: random when empty)")
	name := fs.String("name", "", "display name shown on the consent page")
	public := fs.Bool("public", false, "public client (no secret; PKCE S256 required)")
	firstParty := fs.Bool("first-party", false, "platform's own client: public sub and no consent screen")
	sector := fs.String("sector", "", "sector identifier for the pairwise sub (default: redirect URI host)")
	role := fs.String("role", "", "verifier role (hotel, vehicle_office, ...)")
	backchannel := fs.String("backchannel-logout-uri", "", "back-channel logout URI")
	grace := fs.Duration("grace", 24*time.Hour, "rotate-secret: how long the old secret stays valid")
	authMethod := fs.String("auth-method", "", "token endpoint authentication: "+strings.Join(oidc.AuthMethods, ", ")+" (default client_secret_basic; none for public clients)")
	jwksFile := fs.String("jwks-file", "", "private_key_jwt: file holding the client's public JWK set")
	actor := fs.String("actor", "", "operator name for the audit log (default $USER)")
	idTokenAlg := fs.String("id-token-alg", "", "id_token_signed_response_alg: "+strings.Join(oidc.SigningAlgs, ", ")+" (create: default "+oidc.NewClientIDTokenAlg+"; update: unchanged unless given)")
	var redirects, postLogout, scopes, claims, grants listFlag
	fs.Var(&redirects, "redirect-uri", "redirect URI, exact match (repeat or comma-separate)")
	fs.Var(&postLogout, "post-logout-uri", "post-logout redirect URI (repeat or comma-separate)")
	fs.Var(&scopes, "scopes", "allowed scopes: "+strings.Join(oidc.KnownScopes, ",")+"; API permissions: "+strings.Join(oidc.APIScopes, ","))
	fs.Var(&claims, "claims", "claim permissions (id_number: the full ID number instead of the masked form)")
	fs.Var(&grants, "grant-types", "authorization_code,refresh_token,client_credentials")
	return runWithApp(ctx, fs, cfgPath, args[1:], func(a *app) error {
		base, err := oidc.NewClientAdmin(a.store.Clients(), masterSecret(a), nil)
		if err != nil {
			return err
		}
		adm := base.Audited(a.recorder(), operatorActor(*actor), map[string]string{"via": "cli"})
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		var jwks []byte
		if *jwksFile != "" {
			if jwks, err = readLimited(*jwksFile, 64<<10); err != nil {
				return fmt.Errorf("-jwks-file: %w", err)
			}
		}
		overlay := func(s *oidc.ClientSpec) {
			if set["name"] {
				s.Name = *name
			}
			if set["public"] {
				s.Public = *public
			}
			if set["first-party"] {
				s.FirstParty = *firstParty
			}
			if set["sector"] {
				s.SectorIdentifier = *sector
			}
			if set["role"] {
				s.Role = *role
			}
			if set["backchannel-logout-uri"] {
				s.BackchannelLogoutURI = *backchannel
			}
			if set["redirect-uri"] {
				s.RedirectURIs = redirects
			}
			if set["post-logout-uri"] {
				s.PostLogoutURIs = postLogout
			}
			if set["scopes"] {
				s.Scopes = scopes
			}
			if set["claims"] {
				s.Claims = claims
			}
			if set["grant-types"] {
				s.GrantTypes = grants
			}
			if set["auth-method"] {
				s.AuthMethod = *authMethod
			}
			if set["jwks-file"] {
				s.JWKS = jwks
			}
			if set["id-token-alg"] {
				s.IDTokenAlg = *idTokenAlg
			}
		}
		out := json.NewEncoder(os.Stdout)
		out.SetIndent("", "  ")
		needID := func() error {
			if *id == "" {
				return errors.New("-id is required")
			}
			return nil
		}
		switch sub {
		case "create":
			var spec oidc.ClientSpec
			overlay(&spec)
			c, secret, err := adm.Create(ctx, *id, spec)
			if err != nil {
				return err
			}
			return out.Encode(clientOut(c.ID, oidc.SpecOf(c), secret))
		case "update":
			if err := needID(); err != nil {
				return err
			}
			c, err := adm.Get(ctx, *id)
			if err != nil {
				return err
			}
			spec := oidc.SpecOf(c)
			overlay(&spec)
			if c, err = adm.Update(ctx, *id, spec); err != nil {
				return err
			}
			return out.Encode(clientOut(c.ID, oidc.SpecOf(c), ""))
		case "rotate-secret":
			if err := needID(); err != nil {
				return err
			}
			secret, err := adm.RotateSecret(ctx, *id, *grace)
			if err != nil {
				return err
			}
			return out.Encode(map[string]string{"client_id": *id, "client_secret": secret, "old_secret_valid_for": grace.String()})
		case "delete":
			if err := needID(); err != nil {
				return err
			}
			return adm.Delete(ctx, *id)
		case "list":
			cs, err := adm.List(ctx)
			if err != nil {
				return err
			}
			list := make([]any, 0, len(cs))
			for _, c := range cs {
				list = append(list, clientOut(c.ID, oidc.SpecOf(c), ""))
			}
			return out.Encode(list)
		}
		fmt.Fprintln(os.Stderr, clientUsage)
		return fmt.Errorf("unknown client command %q", sub)
	})
}

func clientOut(id string, s oidc.ClientSpec, secret string) any {
	return struct {
		ID string `json:"client_id"`
		oidc.ClientSpec
		Secret string `json:"client_secret,omitempty"`
	}{id, s, secret}
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	return b, nil
}
