// Plain embedded Tomcat (org.apache.catalina.startup.Tomcat) with the
// connector settings of deploy/tomcat/server.xml: one connector with h2c for
// Sluice's multiplexed connections, one with HTTP/1.1 only. The connector code
// is the code deploy/tomcat/README.md shows; e2e/embedded_test.go compiles and
// runs this file against Debian's libtomcat10-embed-java.
//
// Usage: java GatewayTomcat ADDRESS H2C_PORT H1_PORT H1_MAX_KEEPALIVE_REQUESTS BASE_DIR
// It serves "hello from tomcat\n" on every path, and the request's protocol
// (HTTP/2.0 or HTTP/1.1) on /proto.

import java.io.IOException;
import java.net.InetAddress;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

import org.apache.catalina.Context;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.core.StandardService;
import org.apache.catalina.startup.Tomcat;
import org.apache.coyote.UpgradeProtocol;
import org.apache.coyote.http11.AbstractHttp11Protocol;
import org.apache.coyote.http2.Http2Protocol;

public final class GatewayTomcat {

    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: GatewayTomcat ADDRESS H2C_PORT H1_PORT H1_MAX_KEEPALIVE_REQUESTS BASE_DIR");
            System.exit(2);
        }
        InetAddress address = InetAddress.getByName(args[0]);
        Tomcat tomcat = new Tomcat();
        tomcat.setBaseDir(args[4]);

        // The h2c connector, for Sluice's few long-lived connections.
        Connector h2c = gatewayConnector(address, Integer.parseInt(args[1]));
        addGatewayHttp2(h2c);
        tomcat.setConnector(h2c);

        // An HTTP/1.1-only connector, as a Tomcat 7/8.0 server would be.
        Connector h1 = gatewayConnector(address, Integer.parseInt(args[2]));
        ((AbstractHttp11Protocol<?>) h1.getProtocolHandler()).setMaxKeepAliveRequests(Integer.parseInt(args[3]));
        tomcat.getService().addConnector(h1);

        // Shutdown: stop the connectors first (GOAWAY to the gateway) and let
        // requests in progress finish, up to 5 s, before the webapp stops.
        ((StandardService) tomcat.getService()).setGracefulStopAwaitMillis(5000);

        Context ctx = tomcat.addContext("", null);
        Tomcat.addServlet(ctx, "hello", new HelloServlet());
        ctx.addServletMappingDecoded("/", "hello");

        tomcat.start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                tomcat.stop();
                tomcat.destroy();
            } catch (Exception e) {
                e.printStackTrace();
            }
        }));
        System.out.println("GatewayTomcat: started");
        tomcat.getServer().await();
    }

    // An HTTP/1.1 connector sized and timed for a gateway peer.
    static Connector gatewayConnector(InetAddress address, int port) {
        Connector connector = new Connector("org.apache.coyote.http11.Http11NioProtocol");
        connector.setPort(port);
        connector.setProperty("bindOnInit", "false");
        AbstractHttp11Protocol<?> http = (AbstractHttp11Protocol<?>) connector.getProtocolHandler();
        http.setAddress(address);
        http.setMaxThreads(16);
        http.setAcceptCount(1024);
        http.setConnectionTimeout(20_000);
        http.setKeepAliveTimeout(300_000);   // above Sluice's h1.idle_timeout (90 s)
        http.setMaxKeepAliveRequests(-1);    // the default 100 closes pooled connections
        return connector;
    }

    // Adds Http2Protocol (h2c by upgrade and by prior knowledge) to a
    // connector, or configures the one already there (Spring Boot adds one
    // for server.http2.enabled=true).
    static void addGatewayHttp2(Connector connector) {
        Http2Protocol http2 = null;
        for (UpgradeProtocol p : connector.findUpgradeProtocols()) {
            if (p instanceof Http2Protocol existing) {
                http2 = existing;
            }
        }
        if (http2 == null) {
            http2 = new Http2Protocol();
            connector.addUpgradeProtocol(http2);
        }
        http2.setMaxConcurrentStreams(200);          // >= Sluice's max_streams_per_conn (100)
        http2.setMaxConcurrentStreamExecution(200);  // default 20 parks streams inside Tomcat
        http2.setKeepAliveTimeout(300_000);
        http2.setReadTimeout(10_000);
        http2.setWriteTimeout(10_000);
        http2.setInitialWindowSize(1 << 20);
        // Overhead protection off: only for a connector nothing but the
        // gateway can reach. All five, or one RST_STREAM closes the connection.
        http2.setOverheadCountFactor(0);
        http2.setOverheadResetFactor(0);
        http2.setOverheadDataThreshold(0);
        http2.setOverheadWindowUpdateThreshold(0);
        http2.setOverheadContinuationThreshold(0);
        // The blocking HTTP/2 frame reader: Tomcat 10.1's asynchronous one now
        // and then parses bytes twice on a young connection under a burst and
        // ends it with GOAWAY (deploy/tomcat/README.md, useAsyncIO).
        connector.setProperty("useAsyncIO", "false");
    }

    static final class HelloServlet extends HttpServlet {
        private static final long serialVersionUID = 1L;

        @Override
        protected void service(HttpServletRequest req, HttpServletResponse resp) throws IOException {
            resp.setContentType("text/plain");
            String body = "/proto".equals(req.getRequestURI()) ? req.getProtocol() : "hello from tomcat\n";
            resp.getWriter().write(body);
        }
    }
}
