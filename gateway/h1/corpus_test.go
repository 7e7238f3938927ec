package h1

// clientCorpus is requests as real clients send them: curl 7.88 and Java
// 17's HttpClient captured off the wire, Chromium's as its network log
// shows them. They seed the fuzzers and must parse.
var clientCorpus = map[string]string{
	"curl GET":           "GET /index.html?q=1 HTTP/1.1\r\nHost: 127.0.0.1:18777\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
	"curl form POST":     "POST /form HTTP/1.1\r\nHost: 127.0.0.1:18777\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Length: 7\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\na=1&b=2",
	"curl chunked":       "POST /upload HTTP/1.1\r\nHost: 127.0.0.1:18777\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nb\r\nhello world\r\n0\r\n\r\n",
	"curl expect":        "PUT /big HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
	"java GET":           "GET /api/items?id=7 HTTP/1.1\r\nContent-Length: 0\r\nHost: 127.0.0.1:18777\r\nUser-Agent: Java-http-client/17.0.15\r\nAccept: application/json\r\n\r\n",
	"java POST":          "POST /api/items HTTP/1.1\r\nContent-Length: 12\r\nHost: 127.0.0.1:18777\r\nUser-Agent: Java-http-client/17.0.15\r\nContent-Type: application/json\r\n\r\n{\"name\":\"x\"}",
	"java URLConnection": "GET /examples/ HTTP/1.1\r\nUser-Agent: Java/17.0.15\r\nHost: localhost:8080\r\nAccept: text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2\r\nConnection: keep-alive\r\n\r\n",
	"chromium navigate": "GET /examples/servlets/ HTTP/1.1\r\nHost: localhost:8080\r\nConnection: keep-alive\r\n" +
		"sec-ch-ua: \"Chromium\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\nsec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\n" +
		"Upgrade-Insecure-Requests: 1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n" +
		"Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\n" +
		"Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\nCookie: JSESSIONID=0123456789ABCDEF0123456789ABCDEF; theme=dark\r\n\r\n",
	"chromium websocket": "GET /examples/websocket/echoStreamAnnotation HTTP/1.1\r\nHost: localhost:8080\r\nConnection: Upgrade\r\nPragma: no-cache\r\nCache-Control: no-cache\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\nUpgrade: websocket\r\n" +
		"Origin: http://localhost:8080\r\nSec-WebSocket-Version: 13\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
	"chromium fetch POST": "POST /api/save HTTP/1.1\r\nHost: localhost:8080\r\nConnection: keep-alive\r\nContent-Length: 11\r\n" +
		"sec-ch-ua-platform: \"Linux\"\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n" +
		"Content-Type: text/plain;charset=UTF-8\r\nAccept: */*\r\nOrigin: http://localhost:8080\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\n" +
		"Sec-Fetch-Dest: empty\r\nReferer: http://localhost:8080/app/\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\r\nhello world",
	"HTTP/1.0":         "GET / HTTP/1.0\r\nUser-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
	"OPTIONS *":        "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"absolute-form":    "GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n",
	"trailers chunked": "POST /t HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n5;name=\"v a\"\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n",
}
