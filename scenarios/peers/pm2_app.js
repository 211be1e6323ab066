// The app of scenarios/peers/pm2.toml: a Node.js http server that PM2 runs
// in cluster mode (the server under test is PM2 + this app; no origin
// behind it). Every request gets the same 32,987-byte page as the built-in
// origin's. The port is the first argument.
//
// On SIGINT (what PM2 sends to stop an instance, on `pm2 reload` and
// `pm2 restart` too) it stops accepting and exits once its connections are
// done, as PM2's documentation on graceful shutdown asks of an app.
'use strict';
const http = require('http');

const body = Buffer.alloc(32987, 'x');
const port = Number(process.argv[2]);

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.listen(port, '127.0.0.1');

process.on('SIGINT', () => {
  server.close(() => process.exit(0));
});
