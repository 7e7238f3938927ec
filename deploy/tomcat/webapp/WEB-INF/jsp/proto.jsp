<%-- /proto: the protocol that reached Tomcat ("HTTP/2.0" or "HTTP/1.1"), so tests can tell h2c from the h1 fallback. --%>
<%@ page session="false" trimDirectiveWhitespaces="true" %>
<%
    byte[] body = (request.getProtocol() + "\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    response.setContentType("text/plain");
    response.setContentLength(body.length);
    response.getOutputStream().write(body);
%>
