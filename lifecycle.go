package main

import (
	"fmt"
	"net/http"

	"github.com/ipacct/ipacct_exporter/managed"
)

// reloadHandler serves POST /-/reload, which reloads rules.yaml, when the
// lifecycle API is on (--web.enable-lifecycle, as Prometheus names it). A
// page on another site cannot make a browser send it: net/http's
// CrossOriginProtection refuses requests that the browser marks as
// cross-origin (Sec-Fetch-Site, Origin), such as a form's POST.
func reloadHandler(manager *managed.Manager, enabled bool) http.Handler {
	reload := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !enabled {
			http.Error(w, "the lifecycle API is off: start with --web.enable-lifecycle, or reload with SIGHUP", http.StatusForbidden)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST to reload rules.yaml", http.StatusMethodNotAllowed)
			return
		}
		if manager == nil {
			http.Error(w, "no --config.file to reload", http.StatusBadRequest)
			return
		}
		if err := manager.Reload(); err != nil {
			http.Error(w, fmt.Sprintf("reload failed; the previous rules stay in place: %v", err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "rules.yaml reloaded")
	})
	return http.NewCrossOriginProtection().Handler(reload)
}
