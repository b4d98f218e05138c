package node

import (
	"fmt"
	"io/fs"
	"os"

	"actorim/web"
)

// What Config.WebApp names besides a directory.
const (
	WebAppEmbedded = "embedded" // the app built into the binary (package web)
	WebAppOff      = "off"      // nothing at /
)

// webApp returns the files to serve at / for Config.WebApp: nil when off.
// A directory must hold index.html.
func webApp(v string) (fs.FS, error) {
	switch v {
	case WebAppOff:
		return nil, nil
	case WebAppEmbedded, "":
		return web.App(), nil
	}
	dir := os.DirFS(v)
	if _, err := fs.Stat(dir, "index.html"); err != nil {
		return nil, fmt.Errorf("node: web app directory %s: %w (build the app with npm run build in web/)", v, err)
	}
	return dir, nil
}
