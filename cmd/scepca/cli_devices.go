package main

import (
	"context"
	"flag"
	"net/http"
	"net/url"
	"strconv"
)

// deviceCommands is `scepca devices`: the devices API.
var deviceCommands = func() map[string]apiCommand {
	cmds := map[string]apiCommand{
		"list": {
			summary: "list devices (DELETED ones only with --status DELETED), one page or --all",
			build:   buildListDevices,
			columns: []string{"id", "platform", "user", "status", "integrationId", "lastAttested"},
		},
		"get": {
			summary: "show a device with its certificates",
			args:    []string{"id"},
			build:   get("/api/v1/devices/%s"),
		},
		"delete": {
			summary: "delete a device: its certificates are revoked for good",
			args:    []string{"id"},
			build:   simple(http.MethodDelete, "/api/v1/devices/%s"),
		},
	}
	for action, summary := range map[string]string{
		"suspend":    "suspend an ACTIVE device: not managed, certificates untouched",
		"unsuspend":  "return a SUSPENDED device to ACTIVE",
		"deactivate": "deactivate a device: not managed, certificates put on hold",
		"activate":   "return a DEACTIVATED device to ACTIVE: holds lifted",
	} {
		cmds[action] = apiCommand{summary: summary, args: []string{"id"}, build: post("/api/v1/devices/%s/lifecycle/" + action)}
	}
	return cmds
}()

// buildListDevices registers list's filters and pagination flags. Without
// --all it prints one page and, when there are more, the --cursor of the
// next on stderr; with --all it follows the Link rel="next" headers.
func buildListDevices(fs *flag.FlagSet) apiAction {
	status := fs.String("status", "", "ACTIVE, SUSPENDED, DEACTIVATED or DELETED")
	platform := fs.String("platform", "", "MACOS, WINDOWS, IOS or ANDROID")
	integration := fs.String("integration", "", "integration ID")
	user := fs.String("user", "", "user name")
	limit := fs.Int("limit", 0, "devices per page (1-1000; default: the server's, 100)")
	cursor := fs.String("cursor", "", "page to start from, as printed after the previous page")
	all := fs.Bool("all", false, "fetch every page")
	return func(ctx context.Context, c *apiClient, _ []string) (any, error) {
		q := url.Values{}
		for k, v := range map[string]string{"status": *status, "platform": *platform, "integrationId": *integration, "user": *user, "cursor": *cursor} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *limit != 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		return fetchPages(ctx, c, "/api/v1/devices", q, *all, "devices")
	}
}
