<%-- GET / and /hello: the load-test target, so it writes pre-encoded bytes with a known length and nothing else. --%>
<%@ page session="false" trimDirectiveWhitespaces="true" %>
<%!
    private static final byte[] BODY = "hello from tomcat\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
%>
<%
    response.setContentType("text/plain");
    response.setContentLength(BODY.length);
    response.getOutputStream().write(BODY);
%>
