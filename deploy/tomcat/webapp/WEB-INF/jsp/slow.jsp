<%-- /slow?ms=N: holds a worker thread for N ms (capped at 60 s) before answering, like a slow backend call. --%>
<%@ page session="false" trimDirectiveWhitespaces="true" %>
<%
    long ms = 0;
    try {
        ms = Math.min(60000L, Math.max(0L, Long.parseLong(request.getParameter("ms"))));
    } catch (NumberFormatException e) {
        // missing or bad ms: answer at once
    }
    if (ms > 0) {
        Thread.sleep(ms);
    }
    response.setContentType("text/plain");
    response.setContentLength(5);
    response.getOutputStream().write(new byte[] {'s', 'l', 'o', 'w', '\n'});
%>
