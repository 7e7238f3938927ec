<%-- /headers: the request headers as Tomcat received them, "name: value" per line, names lowercased, one line per value. --%>
<%@ page session="false" trimDirectiveWhitespaces="true" %>
<%
    StringBuilder sb = new StringBuilder(512);
    for (java.util.Enumeration<String> names = request.getHeaderNames(); names.hasMoreElements();) {
        String name = names.nextElement();
        for (java.util.Enumeration<String> values = request.getHeaders(name); values.hasMoreElements();) {
            sb.append(name.toLowerCase(java.util.Locale.ROOT)).append(": ").append(values.nextElement()).append('\n');
        }
    }
    byte[] body = sb.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
    response.setContentType("text/plain;charset=UTF-8");
    response.setContentLength(body.length);
    response.getOutputStream().write(body);
%>
