module github.com/e4box/e4box

go 1.26.8

require golang.org/x/sys v0.49.0
