// Package web holds the chat web app (TypeScript on the SDK in sdk/js,
// built by Vite from src/ into dist/) and its browser tests (test/). The
// built files are committed and embedded here, so that imnode serves the
// app without npm at build time; `npm run build` in this directory
// rebuilds dist/.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// App returns the built app's files, index.html at the root.
func App() fs.FS {
	app, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: fs.Sub cannot fail on it
	}
	return app
}
